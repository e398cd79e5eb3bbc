"""What the GitHub stand-in remembers besides git objects: PRs, statuses, checks, deployments."""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .github_git import BareRepo

_ids = itertools.count(1_000_001)


def next_id() -> int:
    """Ids are unique across kinds, as GitHub's database ids look to a client."""
    return next(_ids)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_id(login: str) -> int:
    """A stable id per login, so the same user looks the same in every payload."""
    return zlib.crc32(login.encode()) % 90_000_000 + 1_000


@dataclass
class Pull:
    number: int
    title: str
    body: str
    user: str
    head: str
    base: str
    head_sha: str
    base_sha: str
    id: int = field(default_factory=next_id)
    state: str = "open"
    merged: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None
    draft: bool = False


@dataclass
class Comment:
    issue_number: int
    body: str
    user: str
    id: int = field(default_factory=next_id)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    reactions: list[tuple[int, str, str]] = field(default_factory=list)  # (id, content, user)


@dataclass
class _Record:
    """What every record carries: a unique id and when it was made (keyword-only, after the rest)."""

    id: int = field(default_factory=next_id, kw_only=True)
    created_at: str = field(default_factory=now_iso, kw_only=True)


@dataclass
class Status(_Record):
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator: str


@dataclass
class CheckRun:
    head_sha: str
    name: str
    status: str = "queued"
    conclusion: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    output: dict = field(default_factory=dict)
    started_at: str | None = field(default_factory=now_iso)
    completed_at: str | None = None
    id: int = field(default_factory=next_id)


@dataclass
class DeploymentStatus(_Record):
    deployment_id: int
    state: str
    creator: str
    description: str
    environment: str
    environment_url: str
    log_url: str


@dataclass
class Deployment:
    sha: str
    ref: str
    task: str
    environment: str
    description: str | None
    payload: dict | str
    creator: str
    production_environment: bool
    transient_environment: bool
    id: int = field(default_factory=next_id)
    created_at: str = field(default_factory=now_iso)
    statuses: list[DeploymentStatus] = field(default_factory=list)


@dataclass
class Repo:
    owner: str
    name: str
    git: BareRepo
    default_branch: str
    collaborators: dict[str, str]
    private: bool = False
    id: int = field(default_factory=next_id)
    created_at: str = field(default_factory=now_iso)
    pushed_at: str = field(default_factory=now_iso)
    pulls: dict[int, Pull] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    deployments: dict[int, Deployment] = field(default_factory=dict)
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def next_number(self) -> int:
        """Issues and pull requests share one sequence of numbers, as on GitHub."""
        return next(self._numbers)

    def permission(self, login: str) -> str:
        if login == self.owner:
            return "admin"
        return self.collaborators.get(login, "none")
