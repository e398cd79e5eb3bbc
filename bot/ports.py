"""The ports the engine and the use cases act through. bot/infra implements them,
tests/fakes has one in-memory fake per port; only bot/wiring.py and the CLI bind adapters."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.domain import GateResult, Replica, RolloutPlan, VerifyReport
from bot.domain.github import (
    CheckRun,
    CheckRunReport,
    CiContext,
    Comment,
    CommitStatus,
    Comparison,
    Deployment,
    DeploymentStatus,
    DeploymentStatusReport,
    FileContent,
    GitRemote,
    MergeResult,
    NewPull,
    Permission,
    PullRequest,
)

# A step reports progress through this: a short human line and optional data.
EventSink = Callable[..., None]


# -- the store ---------------------------------------------------------------------------------------


class LeaseStore(Protocol):
    """One driver per environment: a lease with a fencing token that every write checks."""

    def acquire_lease(self, env_id: int, owner: str, seconds: float) -> int | None: ...
    def renew_lease(self, env_id: int, token: int, seconds: float) -> bool: ...
    def release_lease(self, env_id: int, token: int) -> None: ...


class DeployStore(LeaseStore, Protocol):
    """What the engine and the use cases read and write. Every write that takes a `token`
    raises LeaseLostError when the token no longer holds the environment's lease."""

    def upsert_service(self, name: str, repo: str, clone_url: str, branch: str,
                       config_text: str | None = None, config_sha: str | None = None) -> Any: ...
    def set_head(self, service_id: int, sha: str | None) -> None: ...
    def service(self, name: str) -> Any: ...
    def services(self) -> Sequence[Any]: ...
    def services_of_repo(self, repo: str) -> Sequence[Any]: ...
    def environment(self, service_id: int, name: str) -> Any: ...
    def environments(self, service_id: int) -> Sequence[Any]: ...
    def set_unsynced(self, env_id: int, since: datetime | None, alerted_at: datetime | None) -> None: ...
    def expired_or_idle_envs(self) -> Sequence[Any]: ...
    def unprocessed_deliveries(self, older_than: float, limit: int = 500) -> list[str]: ...

    def create_deploy(self, service_id: int, environment: str, sha: str, ref: str, requested_by: str,
                      manual: bool = False, pull_numbers: list[int] | None = None,
                      force_reason: str | None = None) -> tuple[Any, bool]: ...
    def deploy(self, deploy_id: int) -> Any: ...
    def deploys(self, service_id: int | None = None, environment: str | None = None,
                states: list[str] | None = None, limit: int = 100) -> Sequence[Any]: ...
    def update_deploy(self, deploy_id: int, token: int | None, **fields: Any) -> Any: ...
    def add_event(self, deploy_id: int | None, service: str, environment: str, kind: str, message: str,
                  by: str | None = None, data: dict | None = None) -> None: ...
    def events(self, deploy_id: int) -> Sequence[Any]: ...

    def live_release(self, service_id: int, environment: str) -> Any | None: ...
    def set_live(self, service_id: int, environment: str, sha: str, image: str, deploy_id: int | None,
                 token: int | None) -> Any: ...
    def mark_release_bad(self, service_id: int, environment: str, sha: str) -> None: ...
    def releases(self, service_id: int, environment: str, limit: int = 50) -> Sequence[Any]: ...

    def lock(self, service: str, environment: str, by: str, reason: str) -> Any: ...
    def unlock(self, service: str, environment: str) -> bool: ...
    def lock_for(self, service: str, environment: str) -> Any | None: ...
    def approval(self, deploy_id: int, gate: str) -> Any | None: ...
    def request_approval(self, deploy_id: int, gate: str) -> Any: ...
    def decide_approval(self, deploy_id: int, gate: str, by: str, granted: bool, reason: str) -> Any: ...
    def pending_approvals(self, deploy_id: int) -> Sequence[Any]: ...


class PullStore(Protocol):
    """Pull request metadata kept when a deploy learns it (bot.infra.db.pull_requests)."""

    def put(self, repo: str, number: int, title: str, author: str, merge_sha: str | None = None) -> None: ...


# -- the outside world ---------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class Builder(Protocol):
    def ensure_image(self, context: Path, image: str, on_event: EventSink) -> str:
        """Build `context` as `image` and push it, unless the registry already has it.
        Returns the pushed reference."""
        ...

    def image_exists(self, image: str) -> bool: ...


class Checker(Protocol):
    """Runs a service's repo checks inside its built image."""

    def run_all(self, image: str, checks: Iterable[Any], on_event: EventSink) -> list[Any]: ...


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
    """Repositories, read by clone URL; the one write is a revert pushed to a branch."""

    def checkout(self, clone_url: str, sha: str, dest: Path) -> Path: ...
    def read_file(self, clone_url: str, sha: str, path: str, max_bytes: int | None = None) -> str | None: ...
    def head(self, clone_url: str, branch: str) -> str | None: ...
    def default_branch(self, clone_url: str) -> str | None: ...
    def resolve(self, clone_url: str, ref: str) -> str: ...
    def commit_message(self, clone_url: str, sha: str) -> str: ...
    def changed_paths(self, clone_url: str, base: str, tip: str) -> list[str]: ...
    def same_tree(self, clone_url: str, a: str, b: str) -> bool: ...
    def is_ancestor(self, clone_url: str, ancestor: str, descendant: str) -> bool: ...
    def independent(self, clone_url: str, shas: list[str]) -> list[str]:
        """The shas no other of `shas` contains (the tips of history)."""
        ...

    def first_parent_commits(self, clone_url: str, base: str, tip: str) -> list[str]:
        """Commits in base..tip along the first-parent chain, newest first."""
        ...

    def carries_unreverted(self, clone_url: str, commit: str, tip: str) -> bool:
        """Whether `tip` still carries `commit`'s changes (contains it, and no revert of it)."""
        ...

    def revert_and_push(self, clone_url: str, branch: str, commits: list[str], message: str) -> RevertOutcome:
        """Revert `commits` (newest first) on `branch` and push, unless already reverted there."""
        ...

    def reapply(self, clone_url: str, branch: str, commits: list[str], message: str) -> RevertOutcome:
        """Put back the changes of `commits` (oldest first) that `branch` no longer holds, and push;
        `reverted` names those put back. A conflict pushes nothing and names its files."""
        ...

    def revert_conflicts(self, clone_url: str, branch: str, commits: list[str]) -> list[str]:
        """The files where reverting `commits` (newest first) on `branch`'s head would conflict;
        empty when it applies cleanly. Writes nothing."""
        ...


class PullInfo(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def user_login(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def merged(self) -> bool: ...
    @property
    def merge_commit_sha(self) -> str | None: ...


class GitHost(Protocol):
    """GitHub, as the pipeline uses it. `repo` is always "owner/name". Every method retries
    transient failures itself and raises only bot.errors exceptions (or GitHubRequestError)."""

    def ci_contexts(self, repo: str, sha: str) -> list[CiContext]:
        """Latest commit statuses and check runs on `sha`, one entry per context."""
        ...

    def create_status(self, repo: str, sha: str, status: CommitStatus) -> CommitStatus: ...

    def create_check_run(self, repo: str, report: CheckRunReport) -> CheckRun: ...

    def update_check_run(self, repo: str, check_run_id: int, report: CheckRunReport) -> CheckRun: ...

    def upsert_check_run(self, repo: str, report: CheckRunReport) -> CheckRun:
        """Edit the check run of this name on this sha, or create it."""
        ...

    def find_deployments(self, repo: str, sha: str, environment: str) -> list[Deployment]: ...

    def create_deployment(self, repo: str, sha: str, environment: str, description: str = "") -> Deployment:
        """ref=sha, auto_merge off, no required contexts: our own gates already decided."""
        ...

    def deployment_statuses(self, repo: str, deployment_id: int) -> list[DeploymentStatus]:
        """Newest first."""
        ...

    def create_deployment_status(
        self, repo: str, deployment_id: int, report: DeploymentStatusReport
    ) -> DeploymentStatus: ...

    def bot_login(self) -> str:
        """The login GitHub shows on the bot's own comments, pull requests and commits."""
        ...

    def comments(self, repo: str, number: int) -> list[Comment]: ...

    def create_comment(self, repo: str, number: int, body: str) -> Comment: ...

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> Comment:
        """The one comment on issue/PR `number` that the bot wrote and that starts with
        `marker`, edited to `body` (which gets the marker first), or created. Comments of
        anyone else are never edited, whatever they hold."""
        ...

    def get_pull(self, repo: str, number: int) -> PullRequest: ...

    def find_pulls(self, repo: str, head_branch: str, state: str = "all") -> list[PullRequest]: ...

    def pulls_for_commit(self, repo: str, sha: str) -> list[PullRequest]: ...

    def create_pull(self, repo: str, pull: NewPull) -> PullRequest: ...

    def close_pull(self, repo: str, number: int) -> PullRequest: ...

    def merge_pull(self, repo: str, number: int, title: str | None = None, sha: str | None = None) -> MergeResult:
        """Merge only if the head is still `sha` (GitHub answers 409 otherwise)."""
        ...

    def permission(self, repo: str, login: str) -> Permission: ...

    def add_reaction(self, repo: str, comment_id: int, content: str) -> None: ...

    def file_contents(self, repo: str, path: str, ref: str) -> FileContent: ...

    def compare(self, repo: str, base: str, head: str) -> Comparison: ...

    def commit_message(self, repo: str, sha: str) -> str: ...

    def git_remote(self, repo: str) -> GitRemote: ...


class CandidateTrial(Protocol):
    """Tries one candidate of a bisection beside production (bot.culprit): a replica no user
    reaches, probed on the health path and on `checks` ((path, expected status) pairs) for the
    bake, judged as a release is. Raises TransientError when the machinery fails."""

    def judge(self, plan: RolloutPlan, checks: Sequence[tuple[str, int]], on_event: EventSink,
              weight: int = 0) -> VerifyReport:
        """`weight` > 0 (culprit.mode canary): once healthy, the candidate also takes that percent
        of the production load balancer's requests for its bake, and its 5xx answers count."""
        ...


class Queue(Protocol):
    def drive(self, service: str, environment: str) -> None: ...
    def process_delivery(self, delivery_id: str) -> None: ...


# (service, deploy, commits, reason, evidence) -> outcome: a revert by pull request.
Reverter = Callable[..., RevertOutcome]
# (service, environment, config) -> the target that runs it.
TargetFor = Callable[[str, str, Any], Target]


class Gates(Protocol):
    """The pre-build gates (bot.gating.Gatekeeper), and the guard of an automatic rollback."""

    def __call__(self, host: Any, service: Any, deploy: Any, /) -> list[GateResult]: ...

    def rollback_allowed(self, host: Any, service: Any, deploy: Any, config: Any, /) -> tuple[bool, str]: ...


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


@dataclass
class Wiring:
    """The adapters the engine and the use cases act through (bound in bot/wiring.py)."""

    store: DeployStore
    git: Git
    builder: Builder
    target_for: TargetFor
    queue: Queue | None = None
    reporters: list[Reporter] = field(default_factory=list)
    reverter: Reverter | None = None  # pull-request mode; None: push mode only
    gates: Gates | None = None  # None: a Gatekeeper over `github`
    checker: Checker | None = None  # runs repo checks in the built image
    github: GitHost | None = None
    pulls: PullStore | None = None  # None: kept in `store` (bot.infra.db.pull_requests)
    trial: CandidateTrial | None = None  # tries a bisection's candidates (bot.culprit); None: no bisection
