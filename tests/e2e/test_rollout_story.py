"""The spine on real parts: git, the Docker engine, the registry and HAProxy.

A good release goes live; a release whose health fails is rolled back and its commits are
reverted on master; a release that answers 5xx under traffic is rolled back after it took
traffic. The worker is SIGKILLed in the middle of a rollout and of a rollback, and each deploy
still finishes exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import docker
import pytest
import requests

from bot.domain import DeployRequest
from bot.infra.targets.docker.haproxy import HAProxy
from bot.pipeline import wait_until
from sandbox.sample_app import write_sample_app
from tests.conftest import LocalRepo, git
from tests.e2e.traffic import background_traffic

pytestmark = pytest.mark.docker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """The sample app's repository on disk, each version a commit on master."""

    def __init__(self, root, service: str, port: int, replicas: int = 2, bake: str = "2s"):
        root.mkdir()
        self.repo = LocalRepo(root, service=service, port=port)
        self.service, self.port, self.replicas, self.bake = service, port, replicas, bake

    def release(self, version: str, mode: str = "healthy") -> str:
        write_sample_app(self.repo.work, f"{self.service} {version}", mode=mode, listen=f"127.0.0.1:{self.port}")
        self.repo.write(".github/deploy.yml", f"""\
service: {self.service}
branch: master
environments:
  production: {{target: docker, auto_deploy: true, replicas: {self.replicas}, listen: "127.0.0.1:{self.port}"}}
health: {{path: /health, interval: 0.3s, failures: 3, bake: {self.bake}, timeout: 20s, max_error_rate: 0.01}}
rollback: {{auto: true, revert: push}}
""")
        return self.repo.commit(f"Merge pull request #{len(version)} from octocat/{version}\n\n{version}")

    def request(self, sha: str) -> DeployRequest:
        return DeployRequest(repo=f"acme/{self.service}", clone_url=self.repo.clone_url, ref="refs/heads/master",
                             sha=sha)

    def serves(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.port}/", timeout=5).text.strip()

    def head(self) -> str:
        return git("ls-remote", self.repo.clone_url, "refs/heads/master", cwd=self.repo.work).split()[0]


def containers(service: str) -> list:
    client = docker.from_env()
    return client.containers.list(all=True, filters={"label": f"mainline.service={service}"})


@pytest.fixture
def cleanup(settings):
    apps: list[App] = []
    yield apps
    client = docker.from_env()
    for app in apps:
        for c in client.containers.list(all=True, filters={"label": f"mainline.service={app.service}"}):
            c.remove(force=True)
        HAProxy(settings.state_dir, app.service, "production", f"127.0.0.1:{app.port}").stop()


def app_for(tmp_path, cleanup, name: str, **kw) -> App:
    service = f"t{name}{os.getpid() % 1000}{int(time.time() * 1000) % 100000}"
    app = App(tmp_path / service, service, free_port(), **kw)
    cleanup.append(app)
    return app


def states(wired, service: str) -> dict[str, str]:
    return {d["sha"]: d["state"] for d in wired.pipeline.deploys(service, limit=50)}


def test_bad_release_is_rolled_back_and_reverted(tmp_path, wired, cleanup):
    app = app_for(tmp_path, cleanup, "story")
    v1 = app.release("v1")
    wired.pipeline.request(app.request(v1))
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service) == {v1: "live"}
    assert app.serves() == f"{app.service} v1"

    v2 = app.release("v2")
    wired.pipeline.request(app.request(v2))
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service)[v2] == "live"
    assert app.serves() == f"{app.service} v2"

    v3 = app.release("v3", mode="unhealthy")
    wired.pipeline.request(app.request(v3))
    wired.pipeline.drive(app.service, "production")

    deploys = {d["sha"]: d for d in wired.pipeline.deploys(app.service, limit=10)}
    assert deploys[v3]["state"] == "reverted"
    assert "rollout failed" in deploys[v3]["reason"]
    assert app.serves() == f"{app.service} v2"
    # Master now ends with the revert of v3, whose tree is v2's; its deploy went live without a rollout.
    head = app.head()
    assert head == deploys[v3]["revert_sha"]
    assert git("rev-parse", f"{head}^{{tree}}", cwd=app.repo.bare) == git("rev-parse", f"{v2}^{{tree}}",
                                                                          cwd=app.repo.bare)
    message = git("log", "-1", "--format=%B", head, cwd=app.repo.bare)
    assert f"This reverts commit {v3}" in message and "Mainline rolled back" in message
    assert deploys[head]["state"] == "live"
    [row] = wired.pipeline.status(app.service)
    assert row["in_sync"] is True and row["live"]["sha"] == head
    running = [c for c in containers(app.service) if c.status == "running"]
    assert sorted(c.labels["mainline.sha"] for c in running) == [v2, v2]


def test_release_answering_5xx_under_traffic_is_rolled_back_after_taking_traffic(tmp_path, wired, cleanup):
    app = app_for(tmp_path, cleanup, "errs", replicas=1, bake="3s")
    v1 = app.release("v1")
    wired.pipeline.request(app.request(v1))
    wired.pipeline.drive(app.service, "production")
    v2 = app.release("v2", mode="erroring")
    with background_traffic(app.port):
        wired.pipeline.request(app.request(v2))
        wired.pipeline.drive(app.service, "production")
    deploy = next(d for d in wired.pipeline.deploys(app.service) if d["sha"] == v2)
    assert deploy["state"] == "reverted"
    assert "5xx rate" in deploy["reason"]
    verified = [e for e in deploy["events"] if e["kind"] == "rolling_back"]
    assert verified and verified[0]["data"]["errors_5xx"] > 0
    assert app.serves() == f"{app.service} v1"


def test_lock_holds_automatic_deploys_and_says_why(tmp_path, wired, cleanup):
    app = app_for(tmp_path, cleanup, "lock", replicas=1)
    v1 = app.release("v1")
    wired.pipeline.request(app.request(v1))
    wired.pipeline.drive(app.service, "production")
    wired.pipeline.lock(app.service, "production", "octocat", "incident 42")
    v2 = app.release("v2")
    wired.pipeline.request(app.request(v2))
    wired.pipeline.drive(app.service, "production")
    [row] = wired.pipeline.status(app.service)
    assert row["queue"] == [{"sha": v2, "state": "queued",
                             "blocked_by": "lock: locked by octocat: incident 42; deploys resume when it is unlocked"}]
    assert app.serves() == f"{app.service} v1"
    wired.pipeline.unlock(app.service, "production", "octocat")
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service)[v2] == "live"


# -- crash safety: a real worker process, SIGKILLed mid-step ---------------------------------------------


def worker(settings) -> subprocess.Popen:
    env = dict(os.environ, MAINLINE_DATABASE_URL=settings.database_url, MAINLINE_QUEUE_URL=settings.queue_url,
               MAINLINE_STATE_DIR=str(settings.state_dir), MAINLINE_LEASE_SECONDS="3",
               MAINLINE_RECONCILE_SECONDS="1")
    if settings.github_web_url:
        env["GITHUB_WEB_URL"] = settings.github_web_url
    with open(settings.state_dir / "worker.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, stdout=log, stderr=log)


def kill_when(wired, service: str, sha: str, proc: subprocess.Popen, predicate, timeout: float = 90) -> None:
    def seen() -> bool:
        return any(predicate(e) for d in wired.pipeline.deploys(service, limit=10) if d["sha"] == sha
                   for e in d["events"])

    assert wait_until(seen, timeout, 0.05), "the step to interrupt never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def settle(wired, service: str, sha: str, final: str, timeout: float = 120) -> dict:
    def done():
        return any(d["sha"] == sha and d["state"] == final for d in wired.pipeline.deploys(service, limit=20))

    assert wait_until(done, timeout, 0.3), f"{sha[:12]} never reached {final}: {states(wired, service)}"
    return next(d for d in wired.pipeline.deploys(service, limit=20) if d["sha"] == sha)


def test_worker_killed_mid_rollout_finishes_the_deploy_exactly_once(tmp_path, settings, wired, cleanup):
    app = app_for(tmp_path, cleanup, "kill", replicas=2)
    v1 = app.release("v1")
    wired.pipeline.request(app.request(v1))
    wired.pipeline.drive(app.service, "production")
    v2 = app.release("v2")
    proc = worker(settings)
    try:
        wired.pipeline.request(app.request(v2))
        kill_when(wired, app.service, v2, proc, lambda e: e["data"].get("step") == "replica_healthy")
        assert states(wired, app.service)[v2] == "rolling_out"
        proc = worker(settings)
        deploy = settle(wired, app.service, v2, "live")
        # The finished deploy hands its lease back (a drive queued meanwhile may hold it a moment).
        service_id = wired.store.service(app.service).id
        assert wait_until(lambda: wired.store.environment(service_id, "production").lease_owner is None, 30, 0.2)
    finally:
        proc.kill()
        proc.wait()
    assert [e["kind"] for e in deploy["events"]].count("live") == 1
    running = [c for c in containers(app.service) if c.status == "running"]
    assert sorted(c.labels["mainline.sha"] for c in running) == [v2, v2], "an orphaned container survived"
    assert app.serves() == f"{app.service} v2"


def test_worker_killed_mid_rollback_leaves_exactly_one_revert(tmp_path, settings, wired, cleanup):
    app = app_for(tmp_path, cleanup, "killrb", replicas=2, bake="2s")
    v1 = app.release("v1")
    wired.pipeline.request(app.request(v1))
    wired.pipeline.drive(app.service, "production")
    v2 = app.release("v2", mode="erroring")
    proc = worker(settings)
    try:
        with background_traffic(app.port):
            wired.pipeline.request(app.request(v2))
            kill_when(wired, app.service, v2, proc,
                      lambda e: e["kind"] == "rolling_back" and "restoring" in e["message"])
        proc = worker(settings)
        deploy = settle(wired, app.service, v2, "reverted")
        settle(wired, app.service, deploy["revert_sha"], "live")
    finally:
        proc.kill()
        proc.wait()
    log = git("log", "--format=%s", "master", cwd=app.repo.bare).splitlines()
    assert sum(1 for line in log if line.startswith("Revert ")) == 1
    assert [e["kind"] for e in deploy["events"]].count("reverted") == 1
    running = [c for c in containers(app.service) if c.status == "running"]
    assert sorted(c.labels["mainline.sha"] for c in running) == [v1, v1]
    assert app.serves() == f"{app.service} v1"
