"""The gates on real parts (git, the Docker engine, the registry, HAProxy): a lock, a deploy window
and a contract migration each hold a real merge back and say why everywhere a person looks
(`pipeline.status()`, `/api/services`, `mainline status`), then release it; merges that land while
held coalesce into one deploy; a newer sha still pending CI does not hold an older green one; a
release with a contract migration is not rolled back automatically; a failing repo check blocks."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import docker
import pytest
import requests

from bot.domain import DeployRequest
from bot.domain.github import CiContext
from bot.gating import Gatekeeper
from bot.infra.targets.docker.haproxy import HAProxy
from checks.migrations.rules import safe_way
from sandbox.sample_app import write_sample_app
from tests.conftest import DROP_EMAIL, LocalRepo, authed, git
from tests.e2e.test_rollout_story import free_port, states
from tests.e2e.traffic import background_traffic

pytestmark = pytest.mark.docker

MIGRATION = "db/migrate/20260401000000_drop_email.rb"


@dataclass
class GatedApp:
    """The sample app's repository, each version a commit on master, with gate settings in its config."""

    repo: LocalRepo
    service: str
    port: int
    environment: str = ""  # extra keys for environments.production, as YAML flow items
    top: str = ""  # extra top-level YAML
    bake: str = "1s"

    def release(self, version: str, mode: str = "healthy", files: dict[str, str] | None = None) -> str:
        write_sample_app(self.repo.work, f"{self.service} {version}", mode=mode, listen=f"127.0.0.1:{self.port}")
        extra = f", {self.environment}" if self.environment else ""
        self.repo.write(".github/deploy.yml", f"""\
service: {self.service}
branch: master
environments:
  production: {{target: docker, auto_deploy: true, replicas: 1, listen: "127.0.0.1:{self.port}"{extra}}}
health: {{path: /health, interval: 0.2s, failures: 2, bake: {self.bake}, timeout: 15s, max_error_rate: 0.01}}
rollback: {{auto: true, revert: push}}
{self.top}""")
        return self.repo.commit(f"Merge pull request from octocat/{version}\n\n{version}", files)

    def merge(self, pipeline, version: str, pull: int | None = None, **kw) -> str:
        """A merge lands: its deploy is requested, and the environment driven as far as it goes."""
        sha = self.release(version, **kw)
        pipeline.request(DeployRequest(repo=f"acme/{self.service}", clone_url=self.repo.clone_url,
                                       ref="refs/heads/master", sha=sha,
                                       pull_numbers=(pull,) if pull else ()))
        pipeline.drive(self.service, "production")
        return sha

    def serves(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.port}/", timeout=5).text.strip()


@pytest.fixture
def make_app(tmp_path, settings):
    """Unique service names and free ports; containers, images and HAProxy stopped at teardown."""
    made: list[GatedApp] = []

    def make(name: str, **kw) -> GatedApp:
        service = f"g{name}{os.getpid() % 1000}{int(time.time() * 1000) % 100000}"
        root = tmp_path / service
        root.mkdir()
        port = free_port()
        app = GatedApp(LocalRepo(root, service=service, port=port), service, port, **kw)
        made.append(app)
        return app

    yield make
    client = docker.from_env()
    for app in made:
        for c in client.containers.list(all=True, filters={"label": f"mainline.service={app.service}"}):
            c.remove(force=True)
        HAProxy(settings.state_dir, app.service, "production", f"127.0.0.1:{app.port}").stop()
        for image in client.images.list(name=f"{settings.registry}/{app.service}"):
            client.images.remove(image.id, force=True)
    client.close()


@pytest.fixture
def mainline(mainline):
    """`mainline ARGS…` (tests/conftest.py's), asserting it succeeded; its output."""
    def run(*args: str):
        result = mainline(*args)
        assert result.exit_code == 0, result.output
        return result.output

    return run


@pytest.fixture
def api(settings, wired):
    from bot.app import create_app

    return authed(create_app(settings, wired).test_client(), wired)  # reads with a token


def held(wired, api, mainline, app: GatedApp, sha: str, gate: str) -> str:
    """Assert `sha` waits, queued, on `gate`, the same reason in the pipeline, the API and the CLI."""
    [row] = wired.pipeline.status(app.service)
    [item] = [q for q in row["queue"] if q["sha"] == sha]
    assert item["state"] == "queued", row
    why = item["blocked_by"]
    assert why and why.startswith(f"{gate}: "), why
    [served] = [r for r in api.get("/api/services").json if r["service"] == app.service]
    assert {"sha": sha, "state": "queued", "blocked_by": why} in served["queue"]
    assert f"{sha[:12]} queued — waiting: {why}" in mainline("status", app.service)
    return why


def deploy_of(wired, app: GatedApp, sha: str) -> dict:
    return next(d for d in wired.pipeline.deploys(app.service, limit=50) if d["sha"] == sha)


# -- each gate holds a real merge, then lets it go -----------------------------------------------------


def test_a_lock_holds_a_merge_until_unlocked(wired, api, mainline, make_app):
    app = make_app("lock")
    v1 = app.merge(wired.pipeline, "v1")
    mainline("lock", app.service, "--reason", "incident 42", "--by", "github:hubot")
    v2 = app.merge(wired.pipeline, "v2")
    why = held(wired, api, mainline, app, v2, "lock")
    assert why == "lock: locked by github:hubot: incident 42; deploys resume when it is unlocked"
    assert app.serves() == f"{app.service} v1"

    mainline("unlock", app.service)
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service) == {v1: "live", v2: "live"}
    assert app.serves() == f"{app.service} v2"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_deploy_window_holds_a_merge_until_it_opens(wired, api, mainline, make_app):
    friday, saturday = datetime(2026, 3, 6, 15, 0, tzinfo=UTC), datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    clock = Clock(friday)  # Friday 10:00 in Toronto: open
    wired.pipeline.w.gates = Gatekeeper(clock=clock)
    app = make_app("window", environment='window: {timezone: America/Toronto, days: mon-fri, hours: "09:00-17:00"}')
    app.merge(wired.pipeline, "v1")
    assert app.serves() == f"{app.service} v1"

    clock.now = saturday
    v2 = app.merge(wired.pipeline, "v2")
    why = held(wired, api, mainline, app, v2, "window")
    # Summer time starts on Sunday 2026-03-08 in Toronto, so Monday opens at 09:00 EDT.
    assert why == ("window: outside the deploy window (mon-fri 09:00-17:00 America/Toronto); "
                   "opens Mon 2026-03-09 09:00 EDT")
    clock.now = datetime(2026, 3, 9, 12, 59, tzinfo=UTC)  # 08:59 EDT: still closed
    wired.pipeline.drive(app.service, "production")
    assert deploy_of(wired, app, v2)["state"] == "queued"

    clock.now = datetime(2026, 3, 9, 13, 0, 30, tzinfo=UTC)
    wired.pipeline.drive(app.service, "production")
    assert deploy_of(wired, app, v2)["state"] == "live"
    assert app.serves() == f"{app.service} v2"


def test_a_contract_migration_holds_a_merge_until_a_person_approves(wired, api, mainline, make_app):
    app = make_app("migr")
    app.merge(wired.pipeline, "v1")
    v2 = app.merge(wired.pipeline, "v2", files={MIGRATION: DROP_EMAIL})
    why = held(wired, api, mainline, app, v2, "migrations")
    deploy_id = deploy_of(wired, app, v2)["id"]
    assert why == (f"migrations: waiting for approval of contract migration {MIGRATION} "
                   f"(contract: removes column users.email) from a deployer — rule ban-drop-column: "
                   f"{safe_way('ban-drop-column')}; approve with `mainline approve "
                   f"{deploy_id}` or reject with `mainline reject {deploy_id} --reason …`")
    assert app.serves() == f"{app.service} v1"

    assert "approved" in mainline("approve", str(deploy_id), "--by", "github:octocat", "--reason", "backfilled")
    wired.pipeline.drive(app.service, "production")
    deploy = deploy_of(wired, app, v2)
    assert deploy["state"] == "live"
    assert app.serves() == f"{app.service} v2"
    assert any(e["kind"] == "approval" and e["message"] == "github:octocat approved migrations: backfilled"
               for e in deploy["events"])


# -- coalescing ------------------------------------------------------------------------------------------


def test_merges_held_by_a_lock_coalesce_into_one_deploy_of_the_newest(wired, api, mainline, make_app):
    app = make_app("coal")
    v1 = app.merge(wired.pipeline, "v1")
    mainline("lock", app.service, "--reason", "release freeze")
    v2, v3, v4 = (app.merge(wired.pipeline, v, pull=n) for n, v in ((2, "v2"), (3, "v3"), (4, "v4")))
    for sha in (v2, v3, v4):
        held(wired, api, mainline, app, sha, "lock")

    mainline("unlock", app.service)
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service) == {v1: "live", v2: "superseded", v3: "superseded", v4: "live"}
    assert app.serves() == f"{app.service} v4"
    assert deploy_of(wired, app, v4)["pull_numbers"] == [2, 3, 4], "every PR in the release is told"
    for sha in (v2, v3):
        deploy = deploy_of(wired, app, sha)
        assert deploy["reason"] == f"included in {v4[:12]}"
        assert not any(e["kind"] == "building" for e in deploy["events"]), "a superseded sha was built"


class FakeCi:
    """GitHost.ci_contexts over a dict: sha -> state of `ci/build`."""

    def __init__(self):
        self.builds: dict[str, str] = {}

    def ci_contexts(self, repo: str, sha: str) -> list[CiContext]:
        if sha not in self.builds:
            return []
        return [CiContext("ci/build", self.builds[sha], datetime.now(UTC), "status")]


def test_a_newer_sha_pending_ci_does_not_hold_back_an_older_green_one(wired, api, mainline, make_app):
    ci = FakeCi()
    wired.pipeline.w.gates = Gatekeeper(github=ci)
    app = make_app("ci", top="required_contexts: [ci/build]\n")
    v1 = app.release("v1")
    ci.builds[v1] = "success"
    v2 = app.release("v2")
    v3 = app.release("v3")
    ci.builds.update({v2: "success", v3: "pending"})
    for sha in (v1, v2, v3):
        wired.pipeline.request(DeployRequest(repo=f"acme/{app.service}", clone_url=app.repo.clone_url,
                                             ref="refs/heads/master", sha=sha))
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service) == {v1: "superseded", v2: "live", v3: "queued"}
    assert app.serves() == f"{app.service} v2"
    assert held(wired, api, mainline, app, v3, "ci") == "ci: waiting for CI: ci/build (pending)"

    ci.builds[v3] = "success"
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service)[v3] == "live"
    assert app.serves() == f"{app.service} v3"


# -- no automatic rollback past a contract migration -------------------------------------------------------


def test_a_release_with_a_contract_migration_that_fails_verification_asks_a_person(wired, make_app):
    app = make_app("norb", bake="2s")
    app.merge(wired.pipeline, "v1")
    v2 = app.merge(wired.pipeline, "v2", mode="erroring", files={MIGRATION: DROP_EMAIL})
    wired.pipeline.approve(deploy_of(wired, app, v2)["id"], "github:octocat", True, "backfilled")
    with background_traffic(app.port):
        wired.pipeline.drive(app.service, "production")
    deploy = deploy_of(wired, app, v2)
    assert deploy["state"] == "failed"
    assert deploy["reason"].startswith("verification failed")
    assert "not rolling back automatically" in deploy["reason"]
    assert f"{MIGRATION} (contract: removes column users.email)" in deploy["reason"]
    assert "a person must decide" in deploy["reason"]
    # Nothing was reverted: master still ends with the release, for a person to roll forward or back.
    assert git("rev-parse", "master", cwd=app.repo.bare) == v2
    assert not any(e["kind"] in ("rolled_back", "reverting") for e in deploy["events"])
    # What serves is what /api/services says is live, and a rollback by hand can still find v1.
    [row] = wired.pipeline.status(app.service)
    assert row["live"]["sha"] == v2 and row["in_sync"] is True
    assert [r.status for r in wired.store.releases(wired.store.service(app.service).id, "production")] == \
        ["bad", "retired"]
    # The person decides to roll back: production returns to v1 and master follows.
    wired.pipeline.rollback(app.service, "production", "github:octocat")
    wired.pipeline.drive(app.service, "production")
    assert deploy_of(wired, app, v2)["state"] == "reverted"
    assert app.serves() == f"{app.service} v1"


# -- repo checks ---------------------------------------------------------------------------------------------


def test_a_failing_repo_check_blocks_the_deploy_naming_the_check_and_its_output(wired, make_app):
    checks = ("checks:\n"
              "  - {name: config-present, run: 'test -f /etc/app.conf', timeout: 10s}\n"
              "  - {name: unit, run: 'echo 2 tests; echo FAIL test_price: expected 3 got 4; exit 1', timeout: 10s}\n")
    app = make_app("chk", top=checks)
    v1 = app.merge(wired.pipeline, "v1")
    deploy = deploy_of(wired, app, v1)
    assert deploy["state"] == "failed"
    assert deploy["reason"] == ("repo-checks: check unit failed (exit code 1); last lines of output:\n"
                                "2 tests\nFAIL test_price: expected 3 got 4")
    finished = [e["data"] for e in deploy["events"] if e["data"] and e["data"].get("step") == "check_finished"]
    assert [(d["check"], d["exit_code"]) for d in finished] == [("config-present", 0), ("unit", 1)]
    running = docker.from_env().containers.list(filters={"label": f"mainline.service={app.service}"})
    assert running == [], "a release that failed its checks was started"
