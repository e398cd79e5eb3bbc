"""The part of GitHub the engine and the gates read: pull requests and CI statuses."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import NotFoundError


@dataclass(frozen=True)
class Pull:
    number: int
    title: str
    user_login: str
    body: str = ""
    merged: bool = True
    merge_commit_sha: str | None = None


class FakeGitHost:
    def __init__(self) -> None:
        self.pulls: dict[tuple[str, int], Pull] = {}
        self.contexts: dict[tuple[str, str], list] = {}
        self.comments: dict[tuple[str, int], dict[str, str]] = {}

    def add_pull(self, repo: str, pull: Pull) -> None:
        self.pulls[(repo, pull.number)] = pull

    def get_pull(self, repo: str, number: int) -> Pull:
        if (repo, number) not in self.pulls:
            raise NotFoundError(f"no pull request {repo}#{number}")
        return self.pulls[(repo, number)]

    def ci_contexts(self, repo: str, sha: str) -> list:
        return list(self.contexts.get((repo, sha), []))

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> None:
        """The bot's one comment per marker on a PR: `comments[(repo, number)][marker]` is its body."""
        self.comments.setdefault((repo, number), {})[marker] = body


class FakePulls:
    """The PullStore: what a deploy learned of its pull requests."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], tuple[str, str, str | None]] = {}

    def put(self, repo: str, number: int, title: str, author: str, merge_sha: str | None = None) -> None:
        self.rows[(repo, number)] = (title, author, merge_sha)
