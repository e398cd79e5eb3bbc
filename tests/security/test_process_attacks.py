"""Attack 22: a stopped Mainline left processes running. `mainline demo` stopped by SIGTERM left its
web server and worker behind, holding their ports and the demo's state, so the next demo shared
that state with them. Now `serve`, `worker` and `demo` stop everything they started within
seconds of SIGINT or SIGTERM, a stopping worker hands its lease back, and a demo finds what an
earlier, killed demo left: it stops those orphans when they are provably its own, and otherwise
refuses with a message naming the port.

Also here: log lines never carry a known secret value."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bot.domain import DeployRequest
from bot.pipeline import wait_until
from bot.settings import load_settings
from sandbox.demo_setup import port_free
from tests.conftest import SECRET, LocalRepo

ROOT = Path(__file__).resolve().parents[2]
STOPPED_WITHIN = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (zombies have already stopped)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            except OSError:
                continue
            if int(pgrp) == pgid and state != "Z":
                members.append(int(entry.name))
    return members


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def mainline(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """`mainline ARGS` as a supervisor starts it: its own process group, logs to a file."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env=env, stdout=out, stderr=out,
                                cwd=ROOT, start_new_session=True)


def sigterm_and_time(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> float:
    """Signal `proc` (its leader only, as a supervisor does) and time how long it takes to exit."""
    started = time.monotonic()
    proc.send_signal(signum)
    proc.wait(timeout=30)
    return time.monotonic() - started


def bot_env(settings, **extra: str) -> dict:
    return dict(os.environ, MAINLINE_DATABASE_URL=settings.database_url, MAINLINE_QUEUE_URL=settings.queue_url,
                MAINLINE_STATE_DIR=str(settings.state_dir), GITHUB_WEBHOOK_SECRET=SECRET,
                MAINLINE_LEASE_SECONDS=str(settings.lease_seconds), MAINLINE_RECONCILE_SECONDS="1", **extra)


# -- serve and worker ------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_attack_22_sigterm_stops_serve_and_worker_with_everything_they_started(tmp_path, settings, signum):
    port = free_port()
    env = bot_env(settings)
    serve = mainline(["serve", "--port", str(port), "--workers", "2"], env, tmp_path / "serve.log")
    worker = mainline(["worker"], env, tmp_path / "worker.log")
    try:
        assert wait_until(lambda: _healthy(port), 30, 0.2), (tmp_path / "serve.log").read_text()
        # Healthy once the first gunicorn worker answers: the second may still be forking.
        assert wait_until(lambda: len(children_of(serve.pid)) == 2, 30, 0.2), children_of(serve.pid)
        gunicorn_workers = children_of(serve.pid)
        assert wait_until(lambda: "worker started" in (tmp_path / "worker.log").read_text(), 20, 0.2)
        took = max(sigterm_and_time(serve, signum), sigterm_and_time(worker, signum))
    finally:
        for proc in (serve, worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert took < STOPPED_WITHIN, f"stopping took {took:.1f}s"
    assert serve.returncode == 0 and worker.returncode == 0, (tmp_path / "worker.log").read_text()
    assert all(gone(pid) for pid in gunicorn_workers), "a gunicorn worker outlived its server"
    assert group_members(serve.pid) == [] and group_members(worker.pid) == []
    assert port_free(port), f"port {port} is still taken after the server stopped"
    assert "worker stopped" in (tmp_path / "worker.log").read_text()


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture
def long_bake(tmp_path):
    """A service whose release bakes for a minute: a worker moving it holds the lease that long."""
    from bot.infra.targets.docker.haproxy import HAProxy
    from sandbox.sample_app import write_sample_app

    service, lb = f"hyg{os.getpid() % 1000}{int(time.time() * 1000) % 100000}", free_port()
    (tmp_path / "app").mkdir()
    repo = LocalRepo(tmp_path / "app", service=service, port=lb)
    write_sample_app(repo.work, f"{service} v1", listen=f"127.0.0.1:{lb}")
    repo.write(".github/deploy.yml", f"""\
service: {service}
branch: master
environments:
  production: {{target: docker, auto_deploy: true, replicas: 1, listen: "127.0.0.1:{lb}"}}
health: {{path: /health, interval: 0.3s, failures: 3, bake: 60s, timeout: 20s}}
rollback: {{auto: true, revert: push}}
""")
    sha = repo.commit("v1")
    yield service, lb, DeployRequest(repo=f"acme/{service}", clone_url=repo.clone_url, ref="refs/heads/master", sha=sha)
    import docker

    for container in docker.from_env().containers.list(all=True, filters={"label": f"mainline.service={service}"}):
        container.remove(force=True)
    HAProxy(tmp_path / "state", service, "production", f"127.0.0.1:{lb}").stop()


@pytest.mark.docker
def test_attack_22_a_worker_stopped_mid_deploy_hands_its_lease_back(tmp_path, long_bake):
    service, lb, request = long_bake
    # A long lease: only a worker that hands it back explains a free lease within seconds.
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/mainline.db", queue_url=f"sqlite:///{tmp_path}/q.db",
                             state_dir=tmp_path / "state", github_webhook_secret=SECRET, lease_seconds=60)
    from bot.wiring import wire

    wired = wire(settings)
    env = bot_env(settings)
    worker = mainline(["worker"], env, tmp_path / "worker.log")
    successor = None
    try:
        wired.pipeline.request(request)

        def lease():
            return wired.store.environment(wired.store.service(service).id, "production").lease_owner

        def baking() -> bool:
            [deploy] = wired.pipeline.deploys(service)
            return deploy["state"] == "verifying" and lease() is not None

        assert wait_until(baking, 120, 0.2), (tmp_path / "worker.log").read_text()[-3000:]
        took = sigterm_and_time(worker)
        assert took < STOPPED_WITHIN, f"the worker took {took:.1f}s to stop"
        assert worker.returncode == 0
        assert group_members(worker.pid) == []
        assert lease() is None, "the stopped worker still holds the lease"
        [deploy] = wired.pipeline.deploys(service)
        assert deploy["state"] == "verifying", "stopping the worker must not fail the release"
        # The load balancer is production's, not the worker's: it serves on while no worker runs.
        assert requests.get(f"http://127.0.0.1:{lb}/", timeout=5).text.strip() == f"{service} v1"
        # The next worker takes the deploy up at once, not after the lease would have expired.
        successor = mainline(["worker"], env, tmp_path / "successor.log")
        assert wait_until(lambda: lease() is not None, 20, 0.2), "the next worker did not take the deploy up"
        assert sigterm_and_time(successor) < STOPPED_WITHIN
        assert lease() is None
    finally:
        for proc in (worker, successor):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# -- the demo --------------------------------------------------------------------------------------


class DemoRun:
    """`mainline demo` in its own process, on free ports and a state dir of the test's."""

    def __init__(self, state: Path, ports, log: Path, once: bool = False):
        self.state, self.ports, self.log = state, ports, log
        code = ("import sys; from pathlib import Path; from sandbox.demo import DemoPorts, run_demo; "
                f"sys.exit(run_demo(once={once}, ports=DemoPorts(bot={ports.bot}, lb={ports.lb}, "
                f"github={ports.github}, slack={ports.slack}), state_dir=Path({str(state)!r})))")
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=out,
                                         start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        """The children this demo recorded (not an earlier demo's, whose pid file it replaces)."""
        try:
            record = json.loads((self.state / "demo.pids").read_text())
        except (OSError, ValueError):
            return []
        return record["children"] if record.get("demo") == self.proc.pid else []

    def wait_up(self) -> list[int]:
        up = wait_until(lambda: len(self.children()) == 2 and _healthy(self.ports.bot), 90, 0.3)
        assert up, self.output()[-3000:]
        return self.children()

    def ports_free(self) -> bool:
        return all(port_free(p) for p in (self.ports.bot, self.ports.lb, self.ports.github, self.ports.slack))

    def kill(self) -> None:
        for pid in [self.proc.pid, *self.children()]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.proc.wait()


def demo_ports():
    from sandbox.demo import DemoPorts

    return DemoPorts(bot=free_port(), lb=free_port(), github=free_port(), slack=free_port())


def leases_held(state: Path) -> list[str]:
    with sqlite3.connect(state / "bot" / "mainline.db") as db:
        return [row[0] for row in db.execute("select lease_owner from environments where lease_owner is not null")]


@pytest.mark.docker
def test_attack_22_sigterm_stops_the_demo_and_everything_it_started(tmp_path):
    demo = DemoRun(tmp_path / "demo", demo_ports(), tmp_path / "demo.log")
    try:
        children = demo.wait_up()
        took = sigterm_and_time(demo.proc)
    finally:
        demo.kill()
    assert took < STOPPED_WITHIN, f"the demo took {took:.1f}s to stop:\n{demo.output()[-3000:]}"
    assert all(gone(pid) and group_members(pid) == [] for pid in children), "a child of the demo outlived it"
    assert wait_until(demo.ports_free, 5, 0.2), "a port of the demo is still taken after it stopped"
    assert leases_held(demo.state) == [], "the demo's worker kept its lease"
    assert "stopped (SIGTERM) before the story finished" in demo.output(), demo.output()[-3000:]


@pytest.mark.docker
def test_attack_22_a_demo_stops_what_a_killed_demo_left_running(tmp_path):
    ports = demo_ports()
    first = DemoRun(tmp_path / "demo", ports, tmp_path / "first.log")
    second = None
    try:
        orphans = first.wait_up()
        first.proc.send_signal(signal.SIGKILL)  # no chance to stop its children: they are orphans now
        first.proc.wait()
        assert not any(gone(pid) for pid in orphans)
        second = DemoRun(tmp_path / "demo", ports, tmp_path / "second.log")
        children = second.wait_up()
        assert set(children).isdisjoint(orphans)
        assert all(gone(pid) and group_members(pid) == [] for pid in orphans)
        assert second.output().count("left running by an earlier demo") == 2, second.output()
        assert sigterm_and_time(second.proc) < STOPPED_WITHIN
        assert all(gone(pid) for pid in children)
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert wait_until(second.ports_free, 5, 0.2)


@pytest.mark.docker
def test_attack_22_a_demo_refuses_a_port_taken_by_another_process(tmp_path):
    ports = demo_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.bot))
        squatter.listen()
        demo = DemoRun(tmp_path / "demo", ports, tmp_path / "demo.log", once=True)
        try:
            code = demo.proc.wait(timeout=60)
        finally:
            demo.kill()
        assert squatter.fileno() != -1
    assert code == 1
    assert f"port {ports.bot} (bot) is taken by another process" in demo.output()
    assert demo.children() == []


# -- logs ------------------------------------------------------------------------------------------

LOGGING_SCRIPT = """\
import logging, os
from bot.cli import _setup_logging
_setup_logging(False, os.environ.get("MAINLINE_LOG_FORMAT", "text"))
log = logging.getLogger("mainline.test")
log.info("cloning with token %s", os.environ["GITHUB_TOKEN"])
log.warning(f"slack said no to {os.environ['SLACK_BOT_TOKEN']}")
log.info("request %s", {"headers": {"X-Secret": os.environ["GITHUB_WEBHOOK_SECRET"]}})
log.info("key line %s", os.environ["GITHUB_APP_PRIVATE_KEY"].splitlines()[1])
log.info("an installation token made at run time: ghs_%s", "A" * 36)
try:
    raise RuntimeError("auth failed for " + os.environ["AWS_SECRET_ACCESS_KEY"])
except RuntimeError:
    log.exception("upload failed")
"""
KEY = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretkeylineone0123456789\n"
       "secretkeylinetwo0123456789abcdef\n-----END RSA PRIVATE KEY-----\n")
SECRETS = {"GITHUB_TOKEN": "ghp_notarealtoken0123456789", "SLACK_BOT_TOKEN": "xoxb-not-a-real-token-42",
           "GITHUB_WEBHOOK_SECRET": "webhook-secret-value-77", "GITHUB_APP_PRIVATE_KEY": KEY,
           "AWS_SECRET_ACCESS_KEY": "aws/secret+access+key/value"}


def run_logging(log_format: str) -> str:
    env = dict(os.environ, MAINLINE_LOG_FORMAT=log_format, **SECRETS)
    proc = subprocess.run([sys.executable, "-c", LOGGING_SCRIPT], env=env, cwd=ROOT, capture_output=True, check=False,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_never_carry_a_known_secret(log_format):
    out = run_logging(log_format)
    for name, value in SECRETS.items():
        for part in [value, *value.splitlines()[1:3]] if "KEY" in name else [value]:
            assert part not in out, f"{name} leaked into the log: {out}"
    assert out.count("***") >= 6, out
    assert "cloning with token ***" in out and "upload failed" in out and "RuntimeError" in out
