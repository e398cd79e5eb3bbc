"""Revert a bad release by pull request, as GitHub's revert button would, merged with the
bot's rights, so the production branch says again what production runs.

Each step looks first: a revert pull request already merged, a branch that already holds the
reverts, a draft already waiting for a person. Run twice, it acts once.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.adapters.github_port import GitHost, GitRemote, NewPull, PullRequest
from bot.errors import MainlineError, NotFoundError, TransientError
from bot.ports import RevertOutcome

log = logging.getLogger("mainline.github.revert")

BOT_NAME = "mainline[bot]"
BOT_EMAIL = "mainline[bot]@users.noreply.github.com"
CONFLICT_LINE = re.compile(r"^- `(.+)`$")
# The heading of a revert a person must finish; found again by it when the draft flag is lost.
CONFLICT_HEADING = "### A person must finish this revert"


class RevertGitError(MainlineError):
    """A git command of the revert failed; the message carries git's stderr, never credentials."""


@dataclass(frozen=True)
class RevertRequest:
    repo: str  # owner/name
    branch: str  # the production branch
    commits: tuple[str, ...]  # the bad commits, newest first
    pull_numbers: tuple[int, ...] = ()  # the pull requests they came from
    reason: str = ""  # one line a person can act on
    evidence: str = ""  # markdown: failing probe output, error rate …
    environment: str = "production"

    @property
    def revert_branch(self) -> str:
        return f"mainline/revert-{self.commits[0][:12]}"

    @property
    def marker(self) -> str:
        return f"<!-- mainline:revert:{self.commits[0][:12]} -->"


class Git:
    """The `git` CLI in one work tree, authenticated through the environment so the token
    never appears in argv, in `ps`, or in an error message."""

    def __init__(self, remote: GitRemote, timeout: float = 300):
        self.remote = remote
        self.timeout = timeout
        self.cwd: Path | None = None

    def _env(self) -> dict:
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C",
                   GIT_AUTHOR_NAME=BOT_NAME, GIT_AUTHOR_EMAIL=BOT_EMAIL,
                   GIT_COMMITTER_NAME=BOT_NAME, GIT_COMMITTER_EMAIL=BOT_EMAIL,
                   GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
        if self.remote.password:
            basic = base64.b64encode(f"{self.remote.username}:{self.remote.password}".encode()).decode()
            env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                       GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["git", *args], cwd=self.cwd, env=self._env(), capture_output=True, text=True,
                              timeout=self.timeout)
        if check and proc.returncode != 0:
            message = f"git {args[0]} failed: {proc.stderr.strip()[-800:]}"
            if any(s in proc.stderr for s in ("Connection refused", "timed out", " 502", " 503", " 504")):
                raise TransientError(message)
            raise RevertGitError(message)
        return proc

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()


class PullRequestReverter:
    """Reverts bad commits through a pull request the bot opens and merges."""

    def __init__(self, host: GitHost, workdir: Path | None = None):
        self._host = host
        self._workdir = workdir

    def revert(self, request: RevertRequest) -> RevertOutcome:
        if not request.commits:
            return RevertOutcome(sha=None)
        existing = self._host.find_pulls(request.repo, request.revert_branch, state="all")
        merged = next((p for p in existing if p.merged), None)
        if merged is not None:
            log.info("revert: %s already merged as #%d", request.revert_branch, merged.number)
            return RevertOutcome(sha=None, reverted=request.commits, pull_number=merged.number)
        draft = next((p for p in existing if p.state == "open" and (p.draft or CONFLICT_HEADING in p.body)), None)
        if draft is not None:
            return RevertOutcome(sha=None, conflict_files=_conflicts_listed(draft.body), pull_number=draft.number)
        ready = next((p for p in existing if p.state == "open"), None)
        if ready is not None:
            # A crash between opening and merging: finish the job.
            return self._merge_and_tell(request, ready)

        originals = self._originals(request)
        with tempfile.TemporaryDirectory(prefix="mainline-revert-", dir=self._workdir) as tmp:
            git = Git(self._host.git_remote(request.repo))
            git.run("clone", "--quiet", "--no-tags", "--single-branch", "--branch", request.branch,
                    git.remote.url, tmp)
            git.cwd = Path(tmp)
            pending = [c for c in request.commits if not _already_reverted(git, c)]
            if not pending:
                log.info("revert: %s already holds the reverts of %s", request.branch, ", ".join(request.commits))
                return RevertOutcome(sha=None, reverted=request.commits)
            git.run("checkout", "--quiet", "-b", request.revert_branch)
            done, conflict_files, stuck = _revert_commits(git, pending)
            if conflict_files:
                return self._ask_a_person(request, git, originals, done, stuck, conflict_files)
            git.run("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{request.revert_branch}")
            title = _title(request, originals, git)
        pull = self._host.create_pull(request.repo, NewPull(
            title=title, head=request.revert_branch, base=request.branch,
            body=_pull_body(request, originals)))
        return self._merge_and_tell(request, pull)

    # -- steps ------------------------------------------------------------------------------

    def _originals(self, request: RevertRequest) -> list[PullRequest]:
        found = []
        for number in request.pull_numbers:
            try:
                found.append(self._host.get_pull(request.repo, number))
            except NotFoundError:
                log.warning("revert: %s#%d not found; reverting without it", request.repo, number)
        return found

    def _merge_and_tell(self, request: RevertRequest, pull: PullRequest) -> RevertOutcome:
        result = self._host.merge_pull(request.repo, pull.number, sha=pull.head_sha or None)
        log.info("revert: merged #%d into %s as %s", pull.number, request.branch, result.sha)
        body = (f"This pull request was reverted by #{pull.number} after its release failed in "
                f"{request.environment}.\n\n{_reason_and_evidence(request)}")
        for number in request.pull_numbers:
            self._host.upsert_comment(request.repo, number, request.marker, body)
        return RevertOutcome(sha=result.sha, reverted=request.commits, pull_number=pull.number)

    def _ask_a_person(self, request: RevertRequest, git: Git, originals: list[PullRequest], done: list[str],
                      stuck: str, files: list[str]) -> RevertOutcome:
        if not done:
            # GitHub opens no pull request without a commit; this one says what is left to do.
            git.run("commit", "--quiet", "--allow-empty", "-m",
                    f"Revert of {stuck[:12]} needs a person: conflicts in {', '.join(files)}")
        git.run("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{request.revert_branch}")
        listed = "\n".join(f"- `{f}`" for f in files)
        body = (f"{_pull_body(request, originals)}\n\n"
                f"{CONFLICT_HEADING}\n\n"
                f"Reverting {stuck[:12]} conflicts in:\n\n{listed}\n\n"
                f"Resolve the conflicts on `{request.revert_branch}`, mark this pull request ready and "
                f"merge it. Automatic deploys of this service stay locked until then.")
        pull = self._host.create_pull(request.repo, NewPull(
            title=_title(request, originals, git), head=request.revert_branch, base=request.branch,
            body=body, draft=True))
        comment = (f"Mainline rolled back {request.environment} but could not revert this pull request "
                   f"on `{request.branch}` by itself: reverting conflicts in {', '.join(f'`{f}`' for f in files)}. "
                   f"Draft #{pull.number} waits for a person.\n\n{_reason_and_evidence(request)}")
        for number in request.pull_numbers:
            self._host.upsert_comment(request.repo, number, request.marker, comment)
        # Nothing reached the production branch, so nothing counts as reverted yet.
        return RevertOutcome(sha=None, conflict_files=tuple(files), pull_number=pull.number)


def _already_reverted(git: Git, sha: str) -> bool:
    return bool(git.out("log", "--format=%H", f"--grep=This reverts commit {sha}", "HEAD"))


def _revert_commits(git: Git, commits: list[str]) -> tuple[list[str], list[str], str]:
    """Revert newest first; stop at the first conflict. Returns (reverted, conflicting files,
    the commit that conflicted)."""
    done: list[str] = []
    for sha in commits:
        parents = git.out("rev-list", "--parents", "-n", "1", sha).split()[1:]
        mainline = ["-m", "1"] if len(parents) > 1 else []
        proc = git.run("revert", "--no-edit", *mainline, sha, check=False)
        if proc.returncode != 0:
            files = git.out("diff", "--name-only", "--diff-filter=U").splitlines()
            git.run("revert", "--abort", check=False)
            if not files:
                raise RevertGitError(f"git revert {sha[:12]} failed: {proc.stderr.strip()[-800:]}")
            return done, files, sha
        done.append(sha)
    return done, [], ""


def _newest(request: RevertRequest, originals: list[PullRequest]) -> PullRequest | None:
    for pull in originals:
        if pull.merge_commit_sha == request.commits[0]:
            return pull
    return max(originals, key=lambda p: p.number, default=None)


def _title(request: RevertRequest, originals: list[PullRequest], git: Git | None = None) -> str:
    newest = _newest(request, originals)
    if newest is not None:
        return f'Revert "{newest.title}"'
    # No pull request behind it (a direct push): name it as `git revert` would.
    subject = git.out("log", "-1", "--format=%s", request.commits[0]) if git else request.commits[0][:12]
    return f'Revert "{subject}"'


def _reason_and_evidence(request: RevertRequest) -> str:
    parts = []
    if request.reason:
        parts.append(f"**Reason:** {request.reason}")
    if request.evidence:
        parts.append(request.evidence)
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
