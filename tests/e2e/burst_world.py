"""A GitHub stand-in world tuned for bursts: one replica, a short bake, revert by pull request.

Pushes land on the stand-in one at a time and each is delivered as the webhook GitHub sends
(signed, through the real Flask intake). The bot is driven either in this process
(`World.work`, or `land_now`, which also records the deploy request at once, as the worker's
inbox thread would while a deploy is in flight), or by a real `mainline worker` subprocess that
a test may SIGKILL. The checks at the end are what a user would look at: the API's status, the
deploys, master's history, the revert pull requests and the containers."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import docker
import pytest
import requests

from bot.domain import utcnow
from bot.pipeline import wait_until
from sandbox.github import GitHubSandbox
from tests.e2e.github_world import (
    COLLABORATORS,
    OWNER,
    SECRET,
    TOKEN,
    World,
    free_port,
    remove_app,
    unique_service,
    world_settings,
)

FAST_YML = """\
service: {service}
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    replicas: 1
    listen: "127.0.0.1:{port}"
    deployers: ["github:octocat"]
health: {{path: /health, interval: 0.2s, failures: 2, bake: 0.5s, timeout: 15s, max_error_rate: 0.01}}
rollback: {{auto: true, revert: pull-request}}
"""

# States that mean a release was judged bad, or production was put back.
JUDGED = {"rolling_back", "rolled_back", "reverting", "reverted"}
BUSY = {"queued", "gating", "building", "rolling_out", "verifying", "rolling_back", "rolled_back", "reverting"}
_files = itertools.count(1)


class BurstWorld(World):
    worker_proc: subprocess.Popen | None = None
    notes: dict[str, str]  # sha -> the note file it added

    def config_text(self) -> str:
        return FAST_YML.format(service=self.service, port=self.port)

    # -- arrivals ----------------------------------------------------------------------------------

    def push(self, message: str) -> str:
        """One harmless text file pushed to master, and its webhook delivered to the bot."""
        path = f"notes/{next(_files):04d}.txt"
        sha = self.sandbox.push_commit(self.repo, "master", {path: f"{message}\n"}, message)
        self.notes[sha] = path
        self.relay(("push",))
        return sha

    def burst(self, count: int, prefix: str = "burst") -> list[str]:
        return [self.push(f"{prefix} {i}") for i in range(count)]

    def merge(self, title: str) -> tuple[int, str]:
        """A harmless pull request merged to master (a branch, a PR, a merge commit), as people do."""
        n = next(_files)
        path = f"notes/{n:04d}.txt"
        number, sha = self.merge_pr(f"octocat/note-{n}", {path: f"{title}\n"}, title)
        self.notes[sha] = path
        self.relay()
        return number, sha

    def take_deliveries(self) -> None:
        """What the worker's inbox thread does while a deploy is in flight: record the requests."""
        for delivery_id in self.wired.store.unprocessed_deliveries(older_than=0):
            self.wired.process_delivery(delivery_id)

    def land_now(self, count: int, merges: bool = False) -> list[str]:
        """`count` arrivals (pushes, or merged PRs) recorded at once, mid-step."""
        shas = [self.merge(f"Note {i}")[1] if merges else self.push(f"note {i}") for i in range(count)]
        self.take_deliveries()
        return shas

    def drive_to_idle(self, rounds: int = 6) -> None:
        """In-process: work, relay what the bot caused (a revert's merge), until nothing is left."""
        for _ in range(rounds):
            self.work(limit=2000)
            if not self.relay():
                self.work(limit=2000)
                if self.idle():
                    return
        raise AssertionError(f"not idle after {rounds} rounds: {self.status()}")

    # -- a real worker process -----------------------------------------------------------------------

    def worker_env(self) -> dict[str, str]:
        s = self.settings
        return dict(os.environ, MAINLINE_DATABASE_URL=s.database_url, MAINLINE_QUEUE_URL=s.queue_url,
                    MAINLINE_STATE_DIR=str(s.state_dir), GITHUB_API_URL=self.sandbox.url, GITHUB_TOKEN=TOKEN,
                    GITHUB_WEBHOOK_SECRET=SECRET, MAINLINE_GITHUB_WRITE_INTERVAL="0",
                    MAINLINE_LEASE_SECONDS="3", MAINLINE_RECONCILE_SECONDS="1")

    def start_worker(self) -> subprocess.Popen:
        with open(self.settings.state_dir / "worker.log", "ab") as log:
            self.worker_proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=self.worker_env(),
                                                stdout=log, stderr=log, start_new_session=True)
        return self.worker_proc

    def kill_worker(self) -> None:
        """kill -9: no lease handed back, no claim finished; only this test's own process."""
        proc, self.worker_proc = self.worker_proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_worker(self) -> None:
        proc, self.worker_proc = self.worker_proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def wait_idle(self, timeout: float = 90) -> None:
        if not wait_until(self.idle, timeout, 0.3):
            log = (self.settings.state_dir / "worker.log")
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise AssertionError(f"not in sync after {timeout:g}s: {self.status()}\n"
                                 f"deploys: {self.states()}\nworker log tail:\n{tail}")

    # -- what a user sees ----------------------------------------------------------------------------

    def idle(self) -> bool:
        status = self.status()
        return (status["in_sync"] and status["head"] == self.head() and not status["queue"]
                and not self.deliveries_in_hand())

    def deliveries_in_hand(self, claimed_within: float = 5.0) -> list[str]:
        """Webhooks not processed yet, but for those a dead worker claimed (they wait out the claim)."""
        recent = utcnow() - timedelta(seconds=claimed_within)
        rows = [self.wired.store.delivery(i) for i in self.wired.store.unprocessed_deliveries(0, limit=1000)]
        return [r.delivery_id for r in rows if r.claimed_at is None or r.claimed_at > recent]

    def deliveries_claimed_by_the_dead(self) -> list[str]:
        rows = [self.wired.store.delivery(i) for i in self.wired.store.unprocessed_deliveries(0, limit=1000)]
        return [r.delivery_id for r in rows if r.claimed_at is not None]

    def deploys(self) -> dict[str, dict]:
        """Every production deploy by sha (a burst outgrows the pages' default of 50)."""
        return {d["sha"]: d for d in self.wired.pipeline.deploys(self.service, limit=1000)
                if d["environment"] == "production"}

    def states(self) -> dict[str, str]:
        return {sha: d["state"] for sha, d in self.deploys().items()}

    def rolled_out(self, shas: list[str]) -> list[str]:
        """The shas among `shas` whose deploy reached rolling_out (each a rollout of its own)."""
        return [sha for sha, d in self.deploys().items() if sha in shas
                and any(e["kind"] == "rolling_out" for e in d["events"])]

    def master_log(self) -> list[str]:
        return self.git("log", "--format=%H %s", "master").splitlines()

    def git(self, *args: str) -> str:
        bare = self.sandbox.git_root / OWNER / f"{self.service}.git"
        return subprocess.run(["git", *args], cwd=bare, check=True, capture_output=True, text=True).stdout

    def has_file(self, sha: str, path: str) -> bool:
        bare = self.sandbox.git_root / OWNER / f"{self.service}.git"
        return subprocess.run(["git", "cat-file", "-e", f"{sha}:{path}"], cwd=bare, check=False).returncode == 0

    def reverts_of(self, sha: str) -> list[str]:
        """Commits on master that say they revert `sha` (GitHub's and git's own wording)."""
        out = self.git("log", "--format=%H", "-F", f"--grep=This reverts commit {sha}", "master")
        return out.split()

    def revert_pulls(self) -> list:
        return [p for p in self.sandbox.repo(self.repo).pulls.values() if p.title.startswith("Revert")]

    def running(self) -> list:
        client = docker.from_env()
        try:
            return [c for c in client.containers.list(filters={"label": f"mainline.service={self.service}"})
                    if c.status == "running"]
        finally:
            client.close()

    def duplicate_writes(self) -> list[str]:
        """GitHub writes made twice where one is expected: two bot deployments for one sha and
        environment, two check runs of one name on one sha, two bot comments with one marker."""
        repo = self.sandbox.repo(self.repo)
        seen: dict[tuple, int] = {}
        for d in repo.deployments.values():
            key = ("deployment", d.sha, d.environment)
            seen[key] = seen.get(key, 0) + 1
        for run in repo.check_runs.values():
            key = ("check run", run.head_sha, run.name)
            seen[key] = seen.get(key, 0) + 1
        for c in repo.comments.values():
            if c.user == "mainline[bot]":
                marker = next((line for line in c.body.splitlines() if line.startswith("<!--")), c.body[:40])
                key = ("comment", c.issue_number, marker)
                seen[key] = seen.get(key, 0) + 1
        return [f"{kind} {what[:12] if isinstance(what, str) else what} {name}: {n}"
                for (kind, what, name), n in seen.items() if n > 1]


def carries(w: BurstWorld, tip: str, sha: str) -> bool:
    """`sha`'s change is in `tip`: its note file is there, as it wrote it."""
    return w.has_file(tip, w.notes[sha])


class HookedTarget:
    """The real target, with `hook(plan)` called as each roll_out starts (a rollback's too)."""

    def __init__(self, real, hook):
        self._real, self._hook = real, hook

    def __getattr__(self, name):
        return getattr(self._real, name)

    def roll_out(self, plan, on_event):
        self._hook(plan)
        return self._real.roll_out(plan, on_event)


def on_roll_out(w: BurstWorld, hook) -> None:
    targets = w.wired.pipeline.w.target_for
    w.wired.pipeline.w.target_for = lambda service, env, config: HookedTarget(targets(service, env, config), hook)


def on_pull_opened(w: BurstWorld, hook) -> None:
    """`hook(title)` runs on the stand-in right after a pull request is opened (before any merge)."""
    opened = w.sandbox.open_pull

    def open_pull(full_name, head, base, title, *args, **kwargs):
        number = opened(full_name, head, base, title, *args, **kwargs)
        hook(title)
        return number

    w.sandbox.open_pull = open_pull


class RacyDocker:
    """The real Docker client, with the engine's races of issue 19 injected once each: a list that
    answers 404 "No such container", and a container removed between the list and its inspect."""

    def __init__(self, real, victim_sha: str):
        self.real, self.victim_sha, self.lists, self.seen = real, victim_sha, 0, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    @property
    def containers(self):
        return _RacyContainers(self)


class _RacyContainers:
    def __init__(self, racy: RacyDocker):
        self._racy = racy

    def __getattr__(self, name):
        return getattr(self._racy.real.containers, name)

    def list(self, all=False, filters=None, ignore_removed=False, **kwargs):
        racy, real = self._racy, self._racy.real
        racy.lists += 1
        if racy.lists == 1:
            racy.seen.append("404")
            response = requests.Response()
            response.status_code, response.reason = 404, "Not Found"
            raise docker.errors.NotFound("404 Not Found", response=response,
                                         explanation="No such container: 5f1c0ffee0d1")
        rows = real.api.containers(all=all, filters=filters, **kwargs)
        if racy.lists == 3:
            victim = next((r for r in rows if (r.get("Labels") or {}).get("mainline.sha") == racy.victim_sha), None)
            if victim is not None:
                real.api.remove_container(victim["Id"], force=True)
                racy.seen.append("vanished")
        found = []
        for row in rows:  # docker-py's own list: an inspect per listed container
            try:
                found.append(real.containers.get(row["Id"]))
            except docker.errors.NotFound:
                if not ignore_removed:
                    raise
        return found


def assert_in_sync(w: BurstWorld, landed: list[str], max_rollouts: int = 3) -> dict:
    """One live release at master's head, nothing judged bad, nothing reverted, every sha live or
    superseded, and the shas between two live releases never rolled out on their own."""
    status = w.status()
    head = w.head()
    assert status["in_sync"] is True and status["live"]["sha"] == head == status["head"], status
    assert status["queue"] == [] and status["locked"] is None, status
    deploys = w.deploys()
    judged = {sha[:12]: d["state"] for sha, d in deploys.items() if d["state"] in JUDGED | {"failed"}
              or any(e["kind"] in JUDGED for e in d["events"])}
    assert judged == {}, f"a release was judged bad or failed: {judged}"
    assert not w.revert_pulls(), [p.title for p in w.revert_pulls()]
    assert not [line for line in w.master_log() if " Revert " in f" {line}"], w.master_log()[:5]
    unaccounted = {sha[:12]: deploys.get(sha, {}).get("state") for sha in landed
                   if deploys.get(sha, {}).get("state") not in ("live", "superseded")}
    assert unaccounted == {}, f"shas neither live nor superseded: {unaccounted}"
    misses = coalescing_misses(w, landed)
    assert misses == [], f"a deploy took an older sha while a newer one was queued: {misses}"
    rolled = w.rolled_out(landed)
    assert len(rolled) <= max_rollouts, (f"{len(rolled)} of {len(landed)} shas rolled out on their own: "
                                         f"{[(landed.index(s), s[:12]) for s in rolled]}")
    running = w.running()
    assert len(running) == 1 and running[0].labels["mainline.sha"] == head, \
        [c.labels.get("mainline.sha", "")[:12] for c in running]
    duplicates = w.duplicate_writes()
    assert duplicates == [], duplicates
    return status


def coalescing_misses(w: BurstWorld, landed: list[str]) -> list[str]:
    """Rollouts that started while a newer sha of master (later in `landed`) was already queued:
    the deploy should have taken that newer sha (DESIGN.md: "takes the newest sha")."""
    deploys = w.deploys()
    misses = []
    for i, sha in enumerate(landed):
        d = deploys.get(sha)
        if d is None or sha not in w.rolled_out([sha]) or not d["started_at"]:
            continue
        # A second of slack: a sha recorded while the gates of this one were being asked is fair.
        newer = [later for later in landed[i + 1:] if later in deploys
                 and _at(deploys[later]["created_at"]) < _at(d["started_at"]) - timedelta(seconds=1)]
        if newer:
            order = "recorded in push order" if d["id"] < deploys[newer[-1]]["id"] else "recorded out of push order"
            misses.append(f"{sha[:12]} (#{i}) started at {d['started_at']} while #{landed.index(newer[-1])} "
                          f"{newer[-1][:12]} was queued since {deploys[newer[-1]]['created_at']} "
                          f"(deploy ids {d['id']} < {deploys[newer[-1]]['id']}: {order})")
    return misses


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.removesuffix("Z"))


@pytest.fixture
def make_world():
    """`make_world(**settings)`: a stand-in with `acme/<service>` holding v1, and the bot wired to it."""
    from bot.app import create_app
    from bot.wiring import wire

    made: list[tuple[BurstWorld, Path]] = []

    def make(**overrides) -> BurstWorld:
        state = Path(tempfile.mkdtemp(prefix="mlb-"))  # short: HAProxy's socket path has a limit
        sandbox = GitHubSandbox(state / "github", webhook_url=None, webhook_secret=SECRET, validate=True).start()
        settings = world_settings(state, sandbox.url, **overrides)
        wired = wire(settings)
        w = BurstWorld(sandbox, wired, create_app(settings, wired).test_client(), settings, unique_service("b"),
                       "", free_port())
        w.repo, w.notes = f"{OWNER}/{w.service}", {}
        sandbox.create_repo(OWNER, w.service, dict(w.app_files("v1"), **{"README.md": "# app\n"}),
                            collaborators=dict(COLLABORATORS))
        made.append((w, state))
        return w

    yield make
    for w, state in made:
        w.kill_worker()
        w.sandbox.flush_webhooks()
        w.sandbox.stop()
        remove_app(w.settings.state_dir, w.service)
        shutil.rmtree(state, ignore_errors=True)
    for w, _ in made:
        assert w.sandbox.violations == [], "the stand-in saw GitHub's contract broken"


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f}s"
