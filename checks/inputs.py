"""What each gate is given. The pipeline fetches these; the gates only decide.

Frozen dataclasses, no I/O. `checks` imports only `bot.domain` / `bot.config` types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bot.config import DeployConfig, Window
from bot.domain import Lock

# The normalised states a CI context can be in; `ContextState.from_check_run` maps check runs here.
ContextStatus = Literal["success", "pending", "failure", "error"]
_STATUS_STATES: dict[str, ContextStatus] = {"success": "success", "pending": "pending", "failure": "failure",
                                            "error": "error"}

# GitHub counts these conclusions as passing for required checks.
_PASSING_CONCLUSIONS = {"success", "neutral", "skipped"}


@dataclass(frozen=True)
class ContextState:
    """One report for one CI context on the sha: a commit status or a check run."""

    context: str
    state: ContextStatus
    updated_at: datetime
    source: Literal["status", "check_run"] = "status"
    description: str = ""
    url: str = ""

    @classmethod
    def from_status(cls, context: str, state: str, updated_at: datetime, description: str = "",
                    url: str = "") -> ContextState:
        """A commit status (`success`, `pending`, `failure`, `error`); anything else counts as an error."""
        normal = _STATUS_STATES.get(state, "error")
        return cls(context, normal, updated_at, "status", description or "", url or "")

    @classmethod
    def from_check_run(
        cls, name: str, status: str, conclusion: str | None, updated_at: datetime, summary: str = "", url: str = ""
    ) -> ContextState:
        """A check run: `queued`/`in_progress` are pending; a completed run is green when its
        conclusion is success, neutral or skipped, and a failure otherwise."""
        if status != "completed" or conclusion is None:
            state: ContextStatus = "pending"
        elif conclusion in _PASSING_CONCLUSIONS:
            state = "success"
        else:
            state = "failure"
        text = summary or (f"conclusion: {conclusion}" if conclusion else status)
        return cls(name, state, updated_at, "check_run", text, url or "")


@dataclass(frozen=True)
class RepoCheckResult:
    """How one repo check (from deploy.yml `checks:`) ended in a container of the built image."""

    name: str
    exit_code: int | None  # None when it never exited by itself (timed out, could not start)
    timed_out: bool = False
    output_tail: str = ""  # the last ~40 lines of stdout+stderr
    duration: float = 0.0  # seconds
    timeout: float | None = None  # seconds it was allowed

    @property
    def passed(self) -> bool:
        return not self.timed_out and self.exit_code == 0


@dataclass(frozen=True)
class Approval:
    """A pending, granted or rejected approval of one deploy, asked by one gate."""

    state: Literal["pending", "granted", "rejected"]
    by: str = ""
    reason: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class Ref:
    """A change in another repository: `owner/repo#N`."""

    repo: str  # owner/name
    number: int

    def __str__(self) -> str:
        return f"{self.repo}#{self.number}"


@dataclass(frozen=True)
class DependencyState:
    """Whether something this deploy depends on is live in production.

    `name` is a service (from `depends_on`) or a `Ref` (from a `Depends-On:` line)."""

    name: str | Ref
    live: bool
    detail: str = ""  # why not, e.g. "merged, deploying (building)" or "not merged yet"


@dataclass(frozen=True)
class MigrationRule:
    """Why one reason is contract: the rule it breaks (squawk / strong_migrations style) and the
    safe way to make the same change."""

    reason: str
    rule: str
    safe: str


@dataclass(frozen=True)
class MigrationFinding:
    """One migration file and whether old code still works against the schema it leaves."""

    path: str
    kind: Literal["expand", "contract"]
    reasons: list[str] = field(default_factory=list)
    rules: list[MigrationRule] = field(default_factory=list)  # one per contract reason, in the same order

    @property
    def contract(self) -> bool:
        return self.kind == "contract"

    def rule_for(self, reason: str) -> MigrationRule | None:
        return next((r for r in self.rules if r.reason == reason), None)


@dataclass(frozen=True)
class LockInput:
    lock: Lock | None = None
    manual: bool = False
    force: bool = False
    reason: str | None = None  # why a manual deploy goes past the lock


@dataclass(frozen=True)
class CiInput:
    required: list[str] = field(default_factory=list)  # empty: the config's required_contexts
    statuses: list[ContextState] = field(default_factory=list)
    pending_since: datetime | None = None  # when this sha started waiting on CI
    timeout: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class GateInputs:
    """Everything `evaluate` needs for one (service, environment, sha).

    `config` is None when `.github/deploy.yml` is invalid; `config_problems` then says why
    (one line each, as `ConfigProblem.__str__` gives them)."""

    environment: str
    now: datetime
    config: DeployConfig | None
    config_problems: list[str] = field(default_factory=list)
    lock: LockInput = field(default_factory=LockInput)
    window_override: str | None = None  # a reason to deploy outside the window
    ci: CiInput = field(default_factory=CiInput)
    migrations: list[MigrationFinding] = field(default_factory=list)
    approval: Approval | None = None  # the migrations approval, when one was asked
    dependencies: list[DependencyState] = field(default_factory=list)
    repo_checks: list[RepoCheckResult] | None = None  # None until the image is built and checked

    @property
    def window(self) -> Window | None:
        if self.config is None or self.environment not in self.config.environments:
            return None
        return self.config.environments[self.environment].window

    @property
    def deployers(self) -> list[str]:
        if self.config is None or self.environment not in self.config.environments:
            return []
        return list(self.config.environments[self.environment].deployers)


def short_duration(seconds: float) -> str:
    """`1h 5m`, `42s`: durations people read in a reason."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if not days and not hours and secs:
        parts.append(f"{secs}s")
    return " ".join(p for p in parts if p)

