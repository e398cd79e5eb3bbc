"""Domain types: plain dataclasses and enums, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone


def utcnow() -> datetime:
    """Naive UTC, the one form every stored timestamp takes (SQLite keeps no zone)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class DeployState(str, enum.Enum):
    QUEUED = "queued"
    GATING = "gating"
    BUILDING = "building"
    ROLLING_OUT = "rolling_out"
    VERIFYING = "verifying"
    LIVE = "live"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    REVERTING = "reverting"
    REVERTED = "reverted"
    FAILED = "failed"
    # A queued sha whose commits went live inside a newer deploy (coalescing).
    SUPERSEDED = "superseded"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def in_flight(self) -> bool:
        return not self.terminal and self is not DeployState.QUEUED


TERMINAL_STATES = frozenset(
    {DeployState.LIVE, DeployState.REVERTED, DeployState.FAILED, DeployState.SUPERSEDED}
)

# The forward path and the failure path of DESIGN.md's state machine.
TRANSITIONS: dict[DeployState, frozenset[DeployState]] = {
    DeployState.QUEUED: frozenset({DeployState.GATING, DeployState.SUPERSEDED, DeployState.FAILED}),
    DeployState.GATING: frozenset(
        {DeployState.BUILDING, DeployState.QUEUED, DeployState.FAILED, DeployState.SUPERSEDED}
    ),
    DeployState.BUILDING: frozenset({DeployState.ROLLING_OUT, DeployState.LIVE, DeployState.FAILED}),
    # FAILED from any forward step: a step that kept raising (see Pipeline._step_failed).
    DeployState.ROLLING_OUT: frozenset({DeployState.VERIFYING, DeployState.ROLLING_BACK, DeployState.FAILED}),
    DeployState.VERIFYING: frozenset({DeployState.LIVE, DeployState.ROLLING_BACK, DeployState.FAILED}),
    DeployState.ROLLING_BACK: frozenset({DeployState.ROLLED_BACK, DeployState.FAILED}),
    DeployState.ROLLED_BACK: frozenset({DeployState.REVERTING, DeployState.FAILED}),
    DeployState.REVERTING: frozenset({DeployState.REVERTED, DeployState.FAILED}),
    DeployState.LIVE: frozenset({DeployState.ROLLING_BACK}),  # a person rolls a live release back
    DeployState.REVERTED: frozenset(),
    # A release that failed but still serves (its automatic rollback was refused, e.g. past a
    # contract migration) is rolled back by a person.
    DeployState.FAILED: frozenset({DeployState.ROLLING_BACK}),
    DeployState.SUPERSEDED: frozenset(),
}


def can_transition(src: DeployState, dst: DeployState) -> bool:
    return dst in TRANSITIONS[src]


class GateStatus(str, enum.Enum):
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
    def ok(cls, gate: str, reason: str = "") -> "GateResult":
        return cls(gate, GateStatus.PASS, reason)

    @classmethod
    def wait(cls, gate: str, reason: str) -> "GateResult":
        return cls(gate, GateStatus.WAIT, reason)

    @classmethod
    def block(cls, gate: str, reason: str) -> "GateResult":
        return cls(gate, GateStatus.BLOCK, reason)


@dataclass(frozen=True)
class Release:
    """An image of a service at one sha, as it runs (or ran) in one environment."""

    service: str
    environment: str
    sha: str
    image: str
    since: datetime | None = None


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
    strategy: str  # rolling | blue-green
    health: HealthPolicy
    listen: str  # load balancer address, host:port


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


@dataclass
class DeployEvent:
    at: datetime
    kind: str
    message: str
    data: dict = field(default_factory=dict)
