"""The GitHost port: what the pipeline asks of GitHub, in our own small types.

The lead moves `GitHost` and these types into bot/ports.py; until then they live here so the
adapter, the reporter and the reverter agree on one surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# Collaborator permissions that may push (and so may ask the bot to deploy).
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


@dataclass(frozen=True)
class CiContext:
    """One CI signal on a sha, a commit status or a check run, reduced to status vocabulary:
    state is success | failure | error | pending."""

    context: str
    state: str
    updated_at: datetime | None = None
    source: str = "status"  # status | check_run


@dataclass(frozen=True)
class CommitStatus:
    context: str
    state: str
    description: str = ""
    target_url: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True)
class CheckRunReport:
    """What to show as a check run on a sha. status queued | in_progress | completed; a
    completed run has a conclusion (success, failure, neutral, action_required …)."""

    name: str
    head_sha: str
    status: str = "completed"
    conclusion: str | None = None
    title: str = ""
    summary: str = ""
    details_url: str | None = None


@dataclass(frozen=True)
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    title: str = ""
    summary: str = ""
    html_url: str = ""
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Deployment:
    id: int
    sha: str
    ref: str
    environment: str
    description: str = ""
    created_at: datetime | None = None
    creator: str = ""  # the login that created it


@dataclass(frozen=True)
class DeploymentStatusReport:
    """state: queued | in_progress | success | failure | error | inactive."""

    state: str
    description: str = ""
    environment_url: str | None = None
    log_url: str | None = None


@dataclass(frozen=True)
class DeploymentStatus:
    id: int
    state: str
    description: str = ""
    environment: str = ""
    environment_url: str = ""
    log_url: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    user_login: str
    body: str
    merged: bool
    head_sha: str
    html_url: str
    state: str = "open"
    draft: bool = False
    head_ref: str = ""
    base_ref: str = ""
    merge_commit_sha: str | None = None
    # The repository the head branch lives in: another one for a fork's pull request.
    head_repo: str = ""


@dataclass(frozen=True)
class NewPull:
    title: str
    head: str
    base: str
    body: str = ""
    draft: bool = False


@dataclass(frozen=True)
class MergeResult:
    merged: bool
    sha: str | None
    message: str = ""


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    user_login: str = ""
    html_url: str = ""


@dataclass(frozen=True)
class Permission:
    login: str
    permission: str  # admin | maintain | write | triage | read | none

    @property
    def can_write(self) -> bool:
        return self.permission in WRITE_PERMISSIONS


@dataclass(frozen=True)
class Comparison:
    status: str  # ahead | behind | diverged | identical
    ahead_by: int
    behind_by: int
    commits: tuple[str, ...] = ()  # oldest first, as GitHub lists them


@dataclass(frozen=True)
class FileContent:
    path: str
    sha: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")


@dataclass(frozen=True)
class GitRemote:
    """Where and how to reach a repository over git smart HTTP."""

    url: str
    username: str = "x-access-token"
    password: str = field(default="", repr=False)


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
