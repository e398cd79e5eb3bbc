"""Pull requests, their comments, collaborators' permissions, and repository contents."""

from __future__ import annotations

import re

import github

from bot.domain.github import Comment, Comparison, FileContent, MergeResult, NewPull, Permission, PullRequest
from bot.errors import NotFoundError
from bot.infra.github.base import GitHubBase

MERGE_SUBJECT = re.compile(r"^Merge pull request #(\d+)\b")
SQUASH_SUBJECT = re.compile(r"\(#(\d+)\)\s*$")


class PullsMixin(GitHubBase):
    # -- comments ---------------------------------------------------------------------------

    @staticmethod
    def _comment(c) -> Comment:
        return Comment(c.id, c.body or "", c.user.login if c.user else "", c.html_url or "")

    def comments(self, repo: str, number: int) -> list[Comment]:
        def read() -> list[Comment]:
            return [self._comment(c) for c in self._repo(repo).get_issue(number).get_comments()]

        return self._call(f"comments of {repo}#{number}", read)

    def create_comment(self, repo: str, number: int, body: str) -> Comment:
        def write() -> Comment:
            return self._comment(self._repo(repo).get_issue(number).create_comment(body))

        return self._call(f"comment on {repo}#{number}", write, write=True)

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> Comment:
        if not body.startswith(marker):
            body = f"{marker}\n{body.replace(marker, '')}"
        self.bot_login()  # learnt outside the unit below, so its own retries stay its own

        # Find and write in one retried unit: a retry after a lost response finds the comment
        # the first attempt made instead of adding a second.
        def write() -> Comment:
            issue = self._repo(repo).get_issue(number)
            for existing in issue.get_comments():
                if self._is_own(existing.user.login if existing.user else None, existing.body, marker):
                    if existing.body != body:
                        self._spacer.wait()
                        existing.edit(body)
                    return self._comment(existing)
            self._spacer.wait()
            return self._comment(issue.create_comment(body))

        return self._call(f"comment {marker} on {repo}#{number}", write)

    def add_reaction(self, repo: str, comment_id: int, content: str) -> None:
        def write() -> None:
            self._post_json(repo, f"/issues/comments/{comment_id}/reactions", {"content": content})

        self._call(f"reaction {content} on comment {comment_id} of {repo}", write, write=True)

    # -- pull requests ----------------------------------------------------------------------

    @staticmethod
    def _pull(pr) -> PullRequest:
        # `merged` is absent from list payloads; merged_at is in both and says the same.
        return PullRequest(
            number=pr.number, title=pr.title or "", user_login=pr.user.login if pr.user else "",
            body=pr.body or "", merged=pr.merged_at is not None, head_sha=pr.head.sha,
            html_url=pr.html_url or "", state=pr.state, draft=bool(pr.draft), head_ref=pr.head.ref,
            base_ref=pr.base.ref, merge_commit_sha=pr.merge_commit_sha,
            head_repo=pr.head.repo.full_name if pr.head.repo else "")

    def get_pull(self, repo: str, number: int) -> PullRequest:
        return self._call(f"pull {repo}#{number}", lambda: self._pull(self._repo(repo).get_pull(number)))

    def find_pulls(self, repo: str, head_branch: str, state: str = "all") -> list[PullRequest]:
        owner = repo.split("/")[0]

        def read() -> list[PullRequest]:
            pulls = self._repo(repo).get_pulls(state=state, head=f"{owner}:{head_branch}")
            # Some servers ignore `head`; filter so the answer is right either way.
            return [self._pull(p) for p in pulls if p.head.ref == head_branch]

        return self._call(f"pulls of {repo} from {head_branch}", read)

    def pulls_for_commit(self, repo: str, sha: str) -> list[PullRequest]:
        # A merge or squash commit names its PR in the subject; trust it once the PR agrees it
        # made this commit. Only other commits (rebase merges, direct pushes) need the index.
        subject = (self.commit_message(repo, sha).splitlines() or [""])[0]
        match = MERGE_SUBJECT.search(subject) or SQUASH_SUBJECT.search(subject)
        if match:
            try:
                named = self.get_pull(repo, int(match.group(1)))
            except NotFoundError:
                named = None
            if named is not None and named.merge_commit_sha == sha:
                return [named]

        def read() -> list[PullRequest]:
            return [self._pull(p) for p in self._repo(repo).get_commit(sha).get_pulls()]

        try:
            return self._call(f"pulls of {repo}@{sha[:12]}", read)
        except NotFoundError:
            return []

    def create_pull(self, repo: str, pull: NewPull) -> PullRequest:
        def write() -> PullRequest:
            made = self._repo(repo).create_pull(base=pull.base, head=pull.head, title=pull.title, body=pull.body,
                                                draft=pull.draft)
            return self._pull(made)

        return self._call(f"pull {pull.head} -> {pull.base} in {repo}", write, write=True)

    def close_pull(self, repo: str, number: int) -> PullRequest:
        def write() -> PullRequest:
            pull = self._repo(repo).get_pull(number)
            pull.edit(state="closed")
            return self._pull(pull)

        return self._call(f"close {repo}#{number}", write, write=True)

    def merge_pull(self, repo: str, number: int, title: str | None = None, sha: str | None = None) -> MergeResult:
        not_set = github.GithubObject.NotSet

        def write() -> MergeResult:
            result = self._repo(repo).get_pull(number).merge(
                commit_title=title if title else not_set, merge_method="merge", sha=sha if sha else not_set)
            return MergeResult(bool(result.merged), result.sha, result.message or "")

        return self._call(f"merge of {repo}#{number}", write, write=True)

    def permission(self, repo: str, login: str) -> Permission:
        def read() -> Permission:
            return Permission(login, self._repo(repo).get_collaborator_permission(login))

        try:
            return self._call(f"permission of {login} on {repo}", read)
        except NotFoundError:
            return Permission(login, "none")

    # -- contents and history ---------------------------------------------------------------

    def file_contents(self, repo: str, path: str, ref: str) -> FileContent:
        def read() -> FileContent:
            found = self._repo(repo).get_contents(path, ref=ref)
            if isinstance(found, list):
                raise NotFoundError(f"{path} at {ref} in {repo} is a directory")
            return FileContent(found.path, found.sha, found.decoded_content)

        return self._call(f"{path} at {ref} in {repo}", read)

    def compare(self, repo: str, base: str, head: str) -> Comparison:
        def read() -> Comparison:
            c = self._repo(repo).compare(base, head)
            return Comparison(c.status, c.ahead_by, c.behind_by, tuple(commit.sha for commit in c.commits))

        return self._call(f"compare {base}...{head} in {repo}", read)

    def commit_message(self, repo: str, sha: str) -> str:
        return self._call(f"commit {repo}@{sha[:12]}", lambda: self._repo(repo).get_commit(sha).commit.message)
