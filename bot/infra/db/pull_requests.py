"""Pull request metadata kept in the database when a deploy learns it, so that pages and the API
show titles and authors without asking GitHub on every view."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.domain import utcnow
from bot.infra.db.models import PullRequestRow

TITLE_MAX = 300  # the column's size; GitHub allows 256 characters, a hostile payload more
AUTHOR_MAX = 100
MAX_LOOKUP = 500  # numbers read in one query; a view never needs more


@dataclass(frozen=True)
class StoredPull:
    number: int
    title: str
    author: str
    merge_sha: str | None


class PullRequests:
    """`put` what a deploy learned about a PR; `get` it back for many numbers in one query."""

    def __init__(self, store):
        self.store = store

    def put(self, repo: str, number: int, title: str, author: str, merge_sha: str | None = None) -> None:
        try:
            self._put(repo, number, title, author, merge_sha)
        except IntegrityError:
            # Two processes stored the same new PR at once; the row now exists, so update it.
            self._put(repo, number, title, author, merge_sha)

    def _put(self, repo: str, number: int, title: str, author: str, merge_sha: str | None) -> None:
        with self.store.session() as s:
            row = s.scalar(select(PullRequestRow).where(PullRequestRow.repo == repo, PullRequestRow.number == number)
                           .with_for_update())
            if row is None:
                row = PullRequestRow(repo=repo, number=number)
                s.add(row)
            row.title, row.author = (title or "")[:TITLE_MAX], (author or "")[:AUTHOR_MAX]
            row.merge_sha = merge_sha or row.merge_sha
            row.stored_at = utcnow()

    def get(self, repo: str, numbers) -> dict[int, StoredPull]:
        """The stored PRs of `repo` among `numbers`, by number; unknown numbers are absent."""
        # A number no database column holds (a hostile commit message's) is simply unknown.
        wanted = sorted({int(n) for n in numbers if 0 < int(n) < 2**31})[:MAX_LOOKUP]
        if not wanted:
            return {}
        with self.store.session() as s:
            rows = s.scalars(select(PullRequestRow).where(PullRequestRow.repo == repo,
                                                          PullRequestRow.number.in_(wanted)))
            return {r.number: StoredPull(r.number, r.title, r.author, r.merge_sha) for r in rows}
