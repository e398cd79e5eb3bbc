"""The ports the pipeline acts through. Adapters implement them; only the app factory and
the CLI bind concrete adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Protocol

from bot.domain import Replica, RolloutPlan, VerifyReport

# A step reports progress through this: a short human line and optional data.
EventSink = Callable[..., None]


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class Builder(Protocol):
    def ensure_image(self, context: Path, image: str, on_event: EventSink) -> str:
        """Build `context` as `image` and push it, unless the registry already has it.
        Returns the pushed reference."""
        ...

    def image_exists(self, image: str) -> bool: ...


class Target(Protocol):
    """Where releases run: a Docker host behind HAProxy, or AWS ECS."""

    def roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
        """Make `plan.image` the only release serving, replica by replica (or all at once for
        blue-green), each new replica healthy before it takes traffic. Observes what is already
        running and does only what is missing, so it can be re-run after a crash.
        Raises RolloutError when a new replica never becomes healthy; what served before
        keeps serving."""
        ...

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        """Probe health through the load balancer for the bake time and measure the 5xx rate."""
        ...

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        """After a good bake: stop what no longer serves (blue-green's old set, stray replicas)."""
        ...

    def discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
        """Remove every replica of `plan.sha` that is not serving (a failed rollout's leftovers)."""
        ...

    def replicas(self, service: str, environment: str) -> list[Replica]: ...


@dataclass(frozen=True)
class RevertOutcome:
    sha: str | None  # the new head of the branch, None when nothing had to be done
    reverted: tuple[str, ...] = ()
    conflict_files: tuple[str, ...] = ()
    pull_number: int | None = None

    @property
    def conflicted(self) -> bool:
        return bool(self.conflict_files)


class Git(Protocol):
    def checkout(self, clone_url: str, sha: str, dest: Path) -> Path: ...

    def head(self, clone_url: str, branch: str) -> str | None: ...

    def first_parent_commits(self, clone_url: str, base: str, tip: str) -> list[str]:
        """Commits in base..tip along the first-parent chain, newest first."""
        ...

    def same_tree(self, clone_url: str, a: str, b: str) -> bool: ...

    def revert_and_push(self, clone_url: str, branch: str, commits: list[str], message: str) -> RevertOutcome:
        """Revert `commits` (newest first) on `branch` and push, unless already reverted there."""
        ...


@dataclass(frozen=True)
class DeployNotice:
    """What reporters (GitHub, Slack, email) are told on each change of a deploy."""

    deploy_id: int
    service: str
    environment: str
    repo: str
    sha: str
    state: str
    message: str
    kind: str = "transition"
    pull_numbers: tuple[int, ...] = ()
    requested_by: str = ""
    data: dict = field(default_factory=dict)


class Reporter(Protocol):
    """Tells people. A reporter never holds a deploy back: the pipeline swallows its errors."""

    def notify(self, notice: DeployNotice) -> None: ...
