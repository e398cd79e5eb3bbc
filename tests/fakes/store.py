"""An in-memory DeployStore and LeaseStore, with the same fencing as bot.infra.db.store: a write
made with a token that no longer holds the environment's lease raises LeaseLostError."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain import TERMINAL_STATES, DeployState, utcnow
from bot.errors import LeaseLostError, NotFoundError


@dataclass
class Service:
    id: int
    name: str
    repo: str
    clone_url: str
    branch: str
    config_text: str | None = None
    config_sha: str | None = None
    head_sha: str | None = None


@dataclass
class Environment:
    id: int
    service_id: int
    name: str
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    lease_token: int = 0
    live_release_id: int | None = None
    unsynced_since: datetime | None = None
    sync_alerted_at: datetime | None = None


@dataclass
class Deploy:
    id: int
    service_id: int
    environment: str
    sha: str
    ref: str
    requested_by: str
    created_at: datetime
    state: str = "queued"
    reason: str | None = None
    blocked_by: str | None = None
    image: str | None = None
    previous_sha: str | None = None
    previous_image: str | None = None
    manual: int = 0
    force_reason: str | None = None
    pull_numbers: list = field(default_factory=list)
    revert_sha: str | None = None
    attempts: int = 0
    step_failures: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class Release:
    id: int
    service_id: int
    environment: str
    sha: str
    image: str
    live_since: datetime
    deploy_id: int | None
    status: str = "live"


@dataclass
class Lock:
    service: str
    environment: str
    by: str
    reason: str


@dataclass
class Approval:
    deploy_id: int
    gate: str
    status: str = "pending"
    by: str | None = None
    reason: str | None = None


@dataclass
class Event:
    deploy_id: int | None
    service: str
    environment: str
    kind: str
    message: str
    by: str | None
    data: dict
    at: datetime = field(default_factory=utcnow)


class FakeStore:
    """Rows come back as copies, as a session-less ORM row would: a caller's edit writes nothing."""

    def __init__(self) -> None:
        self.services_: list[Service] = []
        self.envs: list[Environment] = []
        self.deploys_: list[Deploy] = []
        self.releases_: list[Release] = []
        self.locks: list[Lock] = []
        self.approvals: list[Approval] = []
        self.events_: list[Event] = []
        self.moves: set[tuple[str, str]] = set()  # every (from, to) of a deploy's state seen
        self._mutex = threading.RLock()

    # -- services and environments ----------------------------------------------------------------

    def upsert_service(self, name: str, repo: str, clone_url: str, branch: str,
                       config_text: str | None = None, config_sha: str | None = None) -> Service:
        with self._mutex:
            row = next((s for s in self.services_ if s.name == name), None)
            if row is None:
                row = Service(len(self.services_) + 1, name, repo, clone_url, branch)
                self.services_.append(row)
            row.repo, row.clone_url, row.branch = repo, clone_url, branch
            if config_text is not None:
                row.config_text, row.config_sha = config_text, config_sha
            return copy.copy(row)

    def set_head(self, service_id: int, sha: str | None) -> None:
        self._service(service_id).head_sha = sha

    def _service(self, service_id: int) -> Service:
        return next(s for s in self.services_ if s.id == service_id)

    def service(self, name: str) -> Service:
        row = next((s for s in self.services_ if s.name == name), None)
        if row is None:
            raise NotFoundError(f"no service {name!r}")
        return copy.copy(row)

    def services(self) -> list[Service]:
        return [copy.copy(s) for s in self.services_]

    def services_of_repo(self, repo: str) -> list[Service]:
        return [copy.copy(s) for s in self.services_ if s.repo == repo]

    def environment(self, service_id: int, name: str) -> Environment:
        with self._mutex:
            row = self._env(service_id, name)
            if row is None:
                row = Environment(len(self.envs) + 1, service_id, name)
                self.envs.append(row)
            return copy.copy(row)

    def _env(self, service_id: int, name: str) -> Environment | None:
        return next((e for e in self.envs if e.service_id == service_id and e.name == name), None)

    def environments(self, service_id: int) -> list[Environment]:
        return sorted((copy.copy(e) for e in self.envs if e.service_id == service_id), key=lambda e: e.name)

    def set_unsynced(self, env_id: int, since: datetime | None, alerted_at: datetime | None) -> None:
        env = next(e for e in self.envs if e.id == env_id)
        env.unsynced_since, env.sync_alerted_at = since, alerted_at

    def expired_or_idle_envs(self) -> list[Environment]:
        open_states = {s.value for s in DeployState if s not in TERMINAL_STATES}
        busy = {(d.service_id, d.environment) for d in self.deploys_ if d.state in open_states}
        now = utcnow()
        return [copy.copy(e) for e in self.envs if (e.service_id, e.name) in busy
                and (e.lease_expires_at is None or e.lease_expires_at < now)]

    def unprocessed_deliveries(self, older_than: float, limit: int = 500) -> list[str]:
        return []

    # -- leases ------------------------------------------------------------------------------------

    def acquire_lease(self, env_id: int, owner: str, seconds: float) -> int | None:
        with self._mutex:
            env, now = next(e for e in self.envs if e.id == env_id), utcnow()
            if env.lease_owner and env.lease_owner != owner and env.lease_expires_at and env.lease_expires_at > now:
                return None
            env.lease_owner, env.lease_expires_at = owner, now + timedelta(seconds=seconds)
            env.lease_token += 1
            return env.lease_token

    def renew_lease(self, env_id: int, token: int, seconds: float) -> bool:
        env = next(e for e in self.envs if e.id == env_id)
        if env.lease_token != token:
            return False
        env.lease_expires_at = utcnow() + timedelta(seconds=seconds)
        return True

    def release_lease(self, env_id: int, token: int) -> None:
        env = next(e for e in self.envs if e.id == env_id)
        if env.lease_token == token:
            env.lease_owner = env.lease_expires_at = None

    def steal_lease(self, service_id: int, environment: str) -> int:
        """Another worker takes the lease (the test's doing): every older token is stale.
        Returns the thief's token."""
        env = self._env(service_id, environment)
        assert env is not None
        env.lease_owner, env.lease_token = "another-worker", env.lease_token + 1
        return env.lease_token

    def _fence(self, service_id: int, environment: str, token: int | None) -> None:
        env = self._env(service_id, environment)
        if token is not None and (env is None or env.lease_token != token):
            raise LeaseLostError(f"lease token {token} is stale (now {env.lease_token if env else None})")

    # -- deploys -----------------------------------------------------------------------------------

    def create_deploy(self, service_id: int, environment: str, sha: str, ref: str, requested_by: str,
                      manual: bool = False, pull_numbers: list[int] | None = None,
                      force_reason: str | None = None) -> tuple[Deploy, bool]:
        with self._mutex:
            row = next((d for d in self.deploys_ if (d.service_id, d.environment, d.sha)
                        == (service_id, environment, sha)), None)
            if row is not None:
                if pull_numbers:
                    row.pull_numbers = sorted(set(row.pull_numbers) | set(pull_numbers))
                return copy.copy(row), False
            row = Deploy(len(self.deploys_) + 1, service_id, environment, sha, ref, requested_by, utcnow(),
                         manual=int(manual), pull_numbers=sorted(set(pull_numbers or [])), force_reason=force_reason)
            self.deploys_.append(row)
            return copy.copy(row), True

    def deploy(self, deploy_id: int) -> Deploy:
        row = next((d for d in self.deploys_ if d.id == deploy_id), None)
        if row is None:
            raise NotFoundError(f"no deploy {deploy_id}")
        return copy.copy(row)

    def deploys(self, service_id: int | None = None, environment: str | None = None,
                states: list[str] | None = None, limit: int = 100) -> list[Deploy]:
        rows = [d for d in reversed(self.deploys_) if (service_id is None or d.service_id == service_id)
                and (environment is None or d.environment == environment) and (not states or d.state in states)]
        return [copy.copy(d) for d in rows[:limit]]

    def update_deploy(self, deploy_id: int, token: int | None, **fields: Any) -> Deploy:
        with self._mutex:
            row = next(d for d in self.deploys_ if d.id == deploy_id)
            self._fence(row.service_id, row.environment, token)
            if "state" in fields:
                self.moves.add((row.state, DeployState(fields["state"]).value))
            for key, value in fields.items():
                setattr(row, key, value.value if isinstance(value, DeployState) else value)
            return copy.copy(row)

    def add_event(self, deploy_id: int | None, service: str, environment: str, kind: str, message: str,
                  by: str | None = None, data: dict | None = None) -> None:
        self.events_.append(Event(deploy_id, service, environment, kind, message, by, data or {}))

    def events(self, deploy_id: int) -> list[Event]:
        return [e for e in self.events_ if e.deploy_id == deploy_id]

    # -- releases ----------------------------------------------------------------------------------

    def live_release(self, service_id: int, environment: str) -> Release | None:
        env = self._env(service_id, environment)
        if env is None or env.live_release_id is None:
            return None
        return copy.copy(next(r for r in self.releases_ if r.id == env.live_release_id))

    def set_live(self, service_id: int, environment: str, sha: str, image: str, deploy_id: int | None,
                 token: int | None) -> Release:
        with self._mutex:
            self._fence(service_id, environment, token)
            env = self._env(service_id, environment)
            assert env is not None
            if env.live_release_id:
                old = next(r for r in self.releases_ if r.id == env.live_release_id)
                if old.sha == sha:
                    return copy.copy(old)
                if old.status == "live":
                    old.status = "retired"
            release = Release(len(self.releases_) + 1, service_id, environment, sha, image, utcnow(), deploy_id)
            self.releases_.append(release)
            env.live_release_id = release.id
            return copy.copy(release)

    def mark_release_bad(self, service_id: int, environment: str, sha: str) -> None:
        for r in self.releases_:
            if (r.service_id, r.environment, r.sha) == (service_id, environment, sha):
                r.status = "bad"

    def releases(self, service_id: int, environment: str, limit: int = 50) -> list[Release]:
        rows = [r for r in reversed(self.releases_) if r.service_id == service_id and r.environment == environment]
        return [copy.copy(r) for r in rows[:limit]]

    # -- locks and approvals -----------------------------------------------------------------------

    def lock(self, service: str, environment: str, by: str, reason: str) -> Lock:
        self.unlock(service, environment)
        self.locks.append(Lock(service, environment, by, reason))
        return self.locks[-1]

    def unlock(self, service: str, environment: str) -> bool:
        before = len(self.locks)
        self.locks = [lk for lk in self.locks if (lk.service, lk.environment) != (service, environment)]
        return len(self.locks) < before

    def lock_for(self, service: str, environment: str) -> Lock | None:
        return next((lk for lk in self.locks if (lk.service, lk.environment) in
                     ((service, environment), ("*", "*"))), None)

    def approval(self, deploy_id: int, gate: str) -> Approval | None:
        return next((a for a in self.approvals if (a.deploy_id, a.gate) == (deploy_id, gate)), None)

    def request_approval(self, deploy_id: int, gate: str) -> Approval:
        found = self.approval(deploy_id, gate)
        if found is None:
            found = Approval(deploy_id, gate)
            self.approvals.append(found)
        return found

    def decide_approval(self, deploy_id: int, gate: str, by: str, granted: bool, reason: str) -> Approval:
        row = self.request_approval(deploy_id, gate)
        row.status, row.by, row.reason = ("granted" if granted else "rejected"), by, reason
        return row

    def pending_approvals(self, deploy_id: int) -> list[Approval]:
        return [a for a in self.approvals if a.deploy_id == deploy_id and a.status == "pending"]
