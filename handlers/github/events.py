"""Only the fields we use of GitHub's webhook payloads, parsed at the edge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

ZERO_SHA = "0" * 40
# `owner/name` as GitHub allows them (bot.pipeline.Pipeline.clone_url_for checks the same).
REPO_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}$"


class _Edge(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Repository(_Edge):
    """A payload's repository. Its `clone_url` is deliberately not parsed: a payload could name
    any URL (or `--upload-pack=…`), so clones use `pipeline.clone_url_for(full_name)`, built from
    the configured GitHub base."""

    full_name: str = Field(pattern=REPO_NAME, max_length=201)
    default_branch: str | None = None


class User(_Edge):
    login: str


class Ref(_Edge):
    ref: str
    sha: str


class PullRequest(_Edge):
    number: int
    title: str
    merged: bool | None = False
    merge_commit_sha: str | None = None
    base: Ref
    head: Ref
    user: User


class PullRequestEvent(_Edge):
    action: str
    pull_request: PullRequest
    repository: Repository


class Commit(_Edge):
    id: str
    message: str


class PushEvent(_Edge):
    ref: str
    before: str
    after: str
    deleted: bool = False
    commits: list[Commit] = []
    repository: Repository
    pusher: dict | None = None

