"""GitHub's vocabulary in our own small types: what bot.ports.GitHost reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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
