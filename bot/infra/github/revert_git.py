"""The git side of a revert by pull request: one work tree, the reverts made in it, and the
questions the reverter asks before it writes anything (is this commit's change still on the
branch? is the branch on GitHub exactly the revert the bot would make?)."""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bot.domain.github import GitRemote
from bot.errors import MainlineError
from bot.infra.git import git_failure


class RevertGitError(MainlineError):
    """A git command of the revert failed; the message carries git's stderr, never credentials."""


@dataclass(frozen=True)
class Identity:
    """Who the bot's revert commits say made them."""

    name: str
    email: str

    @classmethod
    def of(cls, login: str) -> Identity:
        return cls(login, f"{login}@users.noreply.github.com")


class Git:
    """The `git` CLI in one work tree, authenticated through the environment so the token
    never appears in argv, in `ps`, or in an error message."""

    def __init__(self, remote: GitRemote, identity: Identity, timeout: float = 300):
        self.remote = remote
        self.identity = identity
        self.timeout = timeout
        self.cwd: Path | None = None

    def _env(self) -> dict:
        who = self.identity
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C",
                   GIT_AUTHOR_NAME=who.name, GIT_AUTHOR_EMAIL=who.email,
                   GIT_COMMITTER_NAME=who.name, GIT_COMMITTER_EMAIL=who.email,
                   GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
        if self.remote.password:
            basic = base64.b64encode(f"{self.remote.username}:{self.remote.password}".encode()).decode()
            env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                       GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
        return env

    def run(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(["git", *args], cwd=self.cwd, env=self._env(), capture_output=True, text=True,
                              timeout=self.timeout, input=input)
        if check and proc.returncode != 0:
            raise git_failure(args, proc.stderr, RevertGitError)
        return proc

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def ok(self, *args: str, input: str | None = None) -> bool:
        return self.run(*args, check=False, input=input).returncode == 0

    def remote_head(self, branch: str) -> str | None:
        """The sha `branch` has on GitHub now, fetched so it can be inspected; None if absent."""
        listed = self.out("ls-remote", "origin", f"refs/heads/{branch}").split()
        if not listed or listed[1] != f"refs/heads/{branch}":
            return None
        self.run("fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{branch}:refs/mainline/remote-revert")
        return listed[0]


def already_reverted(git: Git, sha: str) -> bool:
    """Whether HEAD no longer carries `sha`'s change. Judged by the change itself, so a revert
    that was reverted again counts as not reverted, and a revert made by hand under another
    message counts as reverted; the `This reverts commit` line decides only what the change
    cannot (later commits have touched the same lines)."""
    patch = git.run("diff", "--binary", f"{sha}^1", sha).stdout
    if not patch.strip():
        return True  # nothing to take back (an empty commit or merge)
    if git.ok("apply", "--check", "--reverse", "-", input=patch):
        return False  # the change is there as it was made
    if git.ok("apply", "--check", "-", input=patch):
        return True  # the lines are as they were before it
    return bool(git.out("log", "--format=%H", "--fixed-strings", f"--grep=This reverts commit {sha}", "HEAD"))


def revert_commits(git: Git, commits: list[str]) -> tuple[list[str], list[str], str]:
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


def is_own_revert(git: Git, head: str, base: str, commits: list[str]) -> bool:
    """Whether `head` is exactly the revert the bot just made on `base` (HEAD of the work tree):
    built on `base`, one commit per reverted sha, each made by the bot and saying which commit it
    reverts, and the same tree. Authorship alone proves nothing (anyone can write any author),
    so the tree decides; the rest keeps foreign commits out of the production branch's history."""
    if not git.ok("merge-base", "--is-ancestor", base, head):
        return False
    if git.out("rev-parse", f"{head}^{{tree}}") != git.out("rev-parse", "HEAD^{tree}"):
        return False
    made = git.out("rev-list", "--reverse", f"{base}..{head}").split()
    if len(made) != len(commits):
        return False
    expected = set(commits)
    for sha in made:
        shown = git.out("show", "-s", "--format=%ae%x00%ce%x00%P%x00%B", sha)
        author, committer, parents, message = shown.split("\0", 3)
        reverts = {c for c in expected if f"This reverts commit {c}" in message}
        if author != git.identity.email or committer != git.identity.email or len(parents.split()) != 1 or not reverts:
            return False
        expected -= reverts
    return not expected
