"""Domain types: plain dataclasses and enums, no I/O (the states are in `states.py`)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.canary.policy import CanaryPolicy
from bot.domain.app import AppSpec


def utcnow() -> datetime:
    """Naive UTC, the one form every stored timestamp takes (SQLite keeps no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def in_sync(live_sha: str | None, head_sha: str | None) -> bool:
    """Master equals production: the production branch head is the live release."""
    return bool(live_sha and head_sha and live_sha == head_sha)


class GateStatus(enum.StrEnum):
    PASS = "pass"
    WAIT = "wait"
    BLOCK = "block"


@dataclass(frozen=True)
class GateResult:
    gate: str
    status: GateStatus
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status is GateStatus.PASS

    @classmethod
    def ok(cls, gate: str, reason: str = "") -> GateResult:
        return cls(gate, GateStatus.PASS, reason)

    @classmethod
    def wait(cls, gate: str, reason: str) -> GateResult:
        return cls(gate, GateStatus.WAIT, reason)

    @classmethod
    def block(cls, gate: str, reason: str) -> GateResult:
        return cls(gate, GateStatus.BLOCK, reason)


@dataclass(frozen=True)
class Replica:
    """One running instance of a release, as the target observes it."""

    name: str
    image: str
    sha: str
    address: str  # host:port
    healthy: bool | None = None


@dataclass(frozen=True)
class HealthPolicy:
    path: str = "/health"
    interval: float = 2.0
    failures: int = 3
    bake: float = 30.0
    max_error_rate: float = 0.01
    timeout: float = 60.0  # how long a new replica may take to become healthy


@dataclass(frozen=True)
class RolloutPlan:
    """What a target needs to put a release in place."""

    service: str
    environment: str
    sha: str
    image: str
    replicas: int
    strategy: str  # rolling | blue-green | canary
    health: HealthPolicy
    listen: str  # load balancer address, host:port
    app: AppSpec = field(default_factory=AppSpec)  # env, secret references, roles, resources, TLS, release command
    # strategy canary: the steps and their analysis, and how a person steps in (promote, pause,
    # abort): a callable answering the newest unread command, given by the engine.
    canary: CanaryPolicy | None = None
    control: Callable[[], str | None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class VerifyReport:
    healthy: bool
    probes: int
    failed_probes: int
    requests: int
    errors_5xx: int
    reason: str = ""
    last_output: str = ""

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Lock:
    service: str
    environment: str
    by: str
    reason: str
    since: datetime | None = None


@dataclass(frozen=True)
class DeployRequest:
    """A wish to have `sha` of a repository's production branch (or another ref) live."""

    repo: str  # owner/name
    clone_url: str
    ref: str
    sha: str
    environment: str | None = None  # None: every environment whose branch matches
    requested_by: str = "github"
    manual: bool = False
    pull_numbers: tuple[int, ...] = ()
    # The repository's default branch as GitHub reports it: a first-seen repository's service is
    # bound only from its default branch.
    default_branch: str | None = None
    # Queue a failed or superseded deploy of this sha again (the watchdog's repair).
    requeue: bool = False
