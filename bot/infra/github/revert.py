"""Revert a bad release by pull request, as GitHub's revert button would, merged with the
bot's rights, so the production branch says again what production runs.

A revert happens once. Each run re-derives where things stand before it writes anything, so a
run killed after any write and started again from scratch (another process, another day) ends
with one branch, one pull request, one merge:

1. the bot's own revert pull request, found by the marker that opens its body and by its
   author, is the one record: merged means done, a draft means a person is on it;
2. the production branch is asked whether each commit's change is still on it;
3. the branch `mainline/revert-<sha12>` is reused only when its head is exactly the revert the
   bot makes now; otherwise it is force-updated to the bot's own commit, after the pull requests
   someone else opened from it are closed. Only the bot's own pull request is ever merged, and
   only at the head the bot checked.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.domain.github import NewPull, PullRequest
from bot.errors import NotFoundError
from bot.escape import clip, github_code_span, github_inline, github_markdown
from bot.infra.github.revert_git import (
    Git,
    Identity,
    already_reverted,
    is_own_revert,
    revert_commits,
)
from bot.ports import GitHost, RevertOutcome

log = logging.getLogger("mainline.github.revert")

CONFLICT_LINE = re.compile(r"^- `(.+)`$")
# The heading of a revert a person must finish; found again by it when the draft flag is lost.
CONFLICT_HEADING = "### A person must finish this revert"
TITLE_LIMIT = 256  # GitHub's longest pull request title


@dataclass(frozen=True)
class RevertRequest:
    repo: str  # owner/name
    branch: str  # the production branch
    commits: tuple[str, ...]  # the bad commits, newest first
    pull_numbers: tuple[int, ...] = ()  # the pull requests they came from
    reason: str = ""  # one line a person can act on (may quote the repository: escaped when shown)
    evidence: str = ""  # failing probe output, error rate … (escaped when shown)
    environment: str = "production"
    deploy_id: int | None = None

    @property
    def revert_branch(self) -> str:
        return f"mainline/revert-{self.commits[0][:12]}"

    @property
    def marker(self) -> str:
        """Opens the body of the bot's revert pull request; how it is found again."""
        return f"<!-- mainline:revert sha={self.commits[0]} -->"

    @property
    def comment_marker(self) -> str:
        """Opens the bot's comment on each reverted pull request."""
        return f"<!-- mainline:revert:{self.commits[0][:12]} -->"


@dataclass
class _Found:
    """The pull requests from the revert branch, split by whether the bot made them for this."""

    ours: list[PullRequest]
    others: list[PullRequest]

    def merged(self) -> PullRequest | None:
        return next((p for p in self.ours if p.merged), None)

    def open(self) -> PullRequest | None:
        return next((p for p in self.ours if p.state == "open"), None)

    def draft(self) -> PullRequest | None:
        return next((p for p in self.ours if p.state == "open" and (p.draft or CONFLICT_HEADING in p.body)), None)


class PullRequestReverter:
    """Reverts bad commits through a pull request the bot opens and merges."""

    def __init__(self, host: GitHost, workdir: Path | None = None):
        self._host = host
        self._workdir = workdir

    def revert(self, request: RevertRequest) -> RevertOutcome:
        if not request.commits:
            return RevertOutcome(sha=None)
        found = self._find(request)
        merged = found.merged()
        if merged is not None:
            log.info("revert: %s already merged as #%d", request.revert_branch, merged.number)
            self._tell(request, merged)
            return RevertOutcome(sha=merged.merge_commit_sha, reverted=request.commits, pull_number=merged.number)
        draft = found.draft()
        if draft is not None:
            files = _conflicts_listed(draft.body)
            self._tell_conflict(request, draft, files)  # in case a crash came between opening and telling
            return RevertOutcome(sha=None, conflict_files=files, pull_number=draft.number)

        originals = self._originals(request)
        identity = Identity.of(self._host.bot_login())
        with tempfile.TemporaryDirectory(prefix="mainline-revert-", dir=self._workdir) as tmp:
            git = Git(self._host.git_remote(request.repo), identity)
            git.run("clone", "--quiet", "--no-tags", "--single-branch", "--branch", request.branch,
                    git.remote.url, tmp)
            git.cwd = Path(tmp)
            base = git.out("rev-parse", "HEAD")
            pending = [c for c in request.commits if not already_reverted(git, c)]
            if not pending:
                log.info("revert: %s already holds the reverts of %s", request.branch, ", ".join(request.commits))
                self._close(request, [p for p in found.ours + found.others if p.state == "open"],
                            f"`{request.branch}` no longer carries these changes")
                return RevertOutcome(sha=None, reverted=request.commits)
            git.run("checkout", "--quiet", "-b", request.revert_branch)
            done, conflict_files, stuck = revert_commits(git, pending)
            title = _title(request, originals, git)
            if conflict_files:
                return self._ask_a_person(request, git, found, originals, title, done, stuck, conflict_files)
            head = self._own_branch(request, git, found, base, pending)
        pull = found.open() or self._host.create_pull(request.repo, NewPull(
            title=title, head=request.revert_branch, base=request.branch, body=_pull_body(request, originals)))
        return self._merge_and_tell(request, pull, head)

    # -- steps ------------------------------------------------------------------------------

    def _find(self, request: RevertRequest) -> _Found:
        bot = self._host.bot_login()
        pulls = self._host.find_pulls(request.repo, request.revert_branch, state="all")
        ours = [p for p in pulls if p.user_login == bot and p.body.startswith(request.marker)
                and p.base_ref in ("", request.branch)]
        return _Found(ours, [p for p in pulls if p not in ours])

    def _own_branch(self, request: RevertRequest, git: Git, found: _Found, base: str, pending: list[str]) -> str:
        """Make the revert branch on GitHub hold the bot's own revert; return its head."""
        # Someone else's pull request from this branch is never merged; and GitHub takes one
        # open pull request per branch, so it goes before the bot opens its own.
        self._close(request, [p for p in found.others if p.state == "open"],
                    "Mainline did not open it; only Mainline's own revert is merged")
        remote = git.remote_head(request.revert_branch)
        if remote is not None and is_own_revert(git, remote, base, pending):
            log.info("revert: %s already holds the bot's revert %s", request.revert_branch, remote[:12])
            return remote
        if remote is not None:
            log.warning("revert: %s holds %s, which is not the bot's revert of %s; replacing it",
                        request.revert_branch, remote[:12], base[:12])
        git.run("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{request.revert_branch}")
        return git.out("rev-parse", "HEAD")

    def _close(self, request: RevertRequest, pulls: list[PullRequest], why: str) -> None:
        for pull in pulls:
            log.warning("revert: closing #%d from %s (by %s): %s", pull.number, request.revert_branch,
                        pull.user_login, why)
            self._host.close_pull(request.repo, pull.number)

    def _originals(self, request: RevertRequest) -> list[PullRequest]:
        found = []
        for number in request.pull_numbers:
            try:
                found.append(self._host.get_pull(request.repo, number))
            except NotFoundError:
                log.warning("revert: %s#%d not found; reverting without it", request.repo, number)
        return found

    def _merge_and_tell(self, request: RevertRequest, pull: PullRequest, head: str) -> RevertOutcome:
        # Pinned to the head checked above: if anyone moves the branch meanwhile, GitHub
        # refuses (409) and the next run checks again.
        result = self._host.merge_pull(request.repo, pull.number, sha=head)
        log.info("revert: merged #%d into %s as %s", pull.number, request.branch, result.sha)
        self._tell(request, pull)
        return RevertOutcome(sha=result.sha, reverted=request.commits, pull_number=pull.number)

    def _tell(self, request: RevertRequest, pull: PullRequest) -> None:
        body = (f"This pull request was reverted by #{pull.number} ({github_inline(pull.title)}) after its "
                f"release failed in {request.environment}.\n\n{_reason_and_evidence(request)}")
        for number in request.pull_numbers:
            self._host.upsert_comment(request.repo, number, request.comment_marker, body)

    def _ask_a_person(self, request: RevertRequest, git: Git, found: _Found, originals: list[PullRequest],
                      title: str, done: list[str], stuck: str, files: list[str]) -> RevertOutcome:
        if not done:
            # GitHub opens no pull request without a commit; this one says what is left to do.
            git.run("commit", "--quiet", "--allow-empty", "-m",
                    f"Revert of {stuck[:12]} needs a person: conflicts in {clip(', '.join(files), 500)}")
        # Any open pull request from the branch (someone else's, or the bot's own ready one made
        # before the branch moved on) goes: a person gets one draft to finish.
        self._close(request, [p for p in found.ours + found.others if p.state == "open"],
                    "the revert now conflicts; a draft replaces it")
        git.run("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{request.revert_branch}")
        listed = "\n".join(f"- {github_code_span(f)}" for f in files)
        body = (f"{_pull_body(request, originals)}\n\n"
                f"{CONFLICT_HEADING}\n\n"
                f"Reverting {stuck[:12]} conflicts in:\n\n{listed}\n\n"
                f"Resolve the conflicts on `{request.revert_branch}`, mark this pull request ready and "
                f"merge it. Automatic deploys of this service stay locked until then.")
        pull = self._host.create_pull(request.repo, NewPull(
            title=title, head=request.revert_branch, base=request.branch, body=body, draft=True))
        self._tell_conflict(request, pull, files)
        # Nothing reached the production branch, so nothing counts as reverted yet.
        return RevertOutcome(sha=None, conflict_files=tuple(files), pull_number=pull.number)

    def _tell_conflict(self, request: RevertRequest, draft: PullRequest, files) -> None:
        comment = (f"Mainline rolled back {request.environment} but could not revert this pull request "
                   f"on `{request.branch}` by itself: reverting conflicts in "
                   f"{', '.join(github_code_span(f) for f in files)}. "
                   f"Draft #{draft.number} waits for a person.\n\n{_reason_and_evidence(request)}")
        for number in request.pull_numbers:
            self._host.upsert_comment(request.repo, number, request.comment_marker, comment)


def _newest(request: RevertRequest, originals: list[PullRequest]) -> PullRequest | None:
    for pull in originals:
        if pull.merge_commit_sha == request.commits[0]:
            return pull
    return max(originals, key=lambda p: p.number, default=None)


def _title(request: RevertRequest, originals: list[PullRequest], git: Git) -> str:
    """`Revert "<title>"`, as GitHub's revert button names it. A title is plain text on
    GitHub (no mentions, no HTML), so it stays as written, on one line and cut to size."""
    newest = _newest(request, originals)
    # No pull request behind it (a direct push): name it as `git revert` would.
    subject = newest.title if newest is not None else git.out("log", "-1", "--format=%s", request.commits[0])
    return clip(f'Revert "{" ".join(subject.split())}"', TITLE_LIMIT)


def _reason_and_evidence(request: RevertRequest) -> str:
    parts = []
    if request.reason:
        parts.append(f"**Reason:** {github_markdown(' '.join(request.reason.split()), 1000)}")
    if request.evidence:
        parts.append(github_markdown(request.evidence, 4000))
    return "\n\n".join(parts)


def _pull_body(request: RevertRequest, originals: list[PullRequest]) -> str:
    lines = [request.marker]
    lines += [f"Reverts {request.repo}#{p.number}" for p in sorted(originals, key=lambda p: -p.number)]
    lines += ["", f"Mainline rolled back {request.environment}; this brings `{request.branch}` back in line "
                  "with what runs there.", ""]
    lines += [f"- {sha}" for sha in request.commits]
    reason = _reason_and_evidence(request)
    if reason:
        lines += ["", reason]
    return "\n".join(lines)


def _conflicts_listed(body: str) -> tuple[str, ...]:
    section = body.split(CONFLICT_HEADING, 1)[-1]
    return tuple(m.group(1) for line in section.splitlines() if (m := CONFLICT_LINE.match(line.strip())))
