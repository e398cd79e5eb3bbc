"""Git over smart HTTP with the real `git` client: a cached mirror per repository for reads,
a fresh clone for the revert we push."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from bot.errors import MainlineError, NotFoundError, TransientError
from bot.ports import RevertOutcome

log = logging.getLogger("mainline.git")

BOT_NAME = "Mainline"
BOT_EMAIL = "mainline@users.noreply.localhost"


FULL_SHA = re.compile(r"[0-9a-f]{40}")
SHORT_SHA = re.compile(r"[0-9a-f]{7,39}")
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)")


def valid_branch(name: str) -> bool:
    """git check-ref-format's rules for a branch name, without a subprocess."""
    return (0 < len(name) <= 200 and not name.startswith(("-", "/", ".")) and not name.endswith(("/", "."))
            and name != "@" and _BAD_REF.search(name) is None)


class GitError(MainlineError):
    """A git command failed; the message carries its stderr (never credentials)."""


_UNREACHABLE = ("Could not resolve", "Connection refused", "timed out", " 502", " 503", " 504")


def git_failure(args: tuple[str, ...], stderr: str, error: type[MainlineError]) -> MainlineError:
    """A failed git command as our error: the remote being unreachable is transient (retried,
    never evidence against a release); anything else is `error`. Carries stderr, never argv."""
    message = f"git {args[0]} failed: {stderr.strip()[-800:]}"
    return TransientError(message) if any(s in stderr for s in _UNREACHABLE) else error(message)


class GitClient:
    """`token`: one credential for every remote (GITHUB_TOKEN). `credentials`: the token for a
    clone URL, asked before each network command (a GitHub App's installation token, renewed as
    it nears expiry), or None when that URL gets none; it is sent only to that repository's URL."""

    def __init__(self, cache_dir: Path, token: str | None = None, timeout: float = 300,
                 credentials: Callable[[str], str | None] | None = None):
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self._token = token
        self._credentials = credentials

    # -- plumbing ----------------------------------------------------------------------------

    def _env(self, url: str | None = None) -> dict:
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_AUTHOR_NAME=BOT_NAME, GIT_AUTHOR_EMAIL=BOT_EMAIL,
                   GIT_COMMITTER_NAME=BOT_NAME, GIT_COMMITTER_EMAIL=BOT_EMAIL, LC_ALL="C")
        token, key = self._token, "http.extraHeader"
        if self._credentials is not None:
            token = self._credentials(url) if url else None
            key = f"http.{url}.extraHeader"  # only requests to this repository carry it
        if token:
            # Through the environment, not argv nor the remote URL: the token never shows in `ps`,
            # in an error, or in a mirror's .git/config.
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=key, GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
        return env

    def _git(self, *args: str, cwd: Path | None = None, check: bool = True,
             url: str | None = None) -> subprocess.CompletedProcess:
        """Run git; `url`: the remote a network command talks to (for its credential)."""
        proc = subprocess.run(["git", *args], cwd=cwd, env=self._env(url), capture_output=True, text=True,
                              timeout=self.timeout)
        if check and proc.returncode != 0:
            raise git_failure(args, proc.stderr, GitError)
        return proc

    def _mirror_path(self, clone_url: str) -> Path:
        digest = hashlib.sha256(clone_url.encode()).hexdigest()[:16]
        name = clone_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        return self.cache_dir / f"{name}-{digest}.git"

    @contextmanager
    def _mirror(self, clone_url: str, fetch: bool = True):
        path = self._mirror_path(clone_url)
        lock_path = path.with_suffix(".lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not (path / "HEAD").exists():
                    shutil.rmtree(path, ignore_errors=True)
                    self._git("clone", "--mirror", "--quiet", "--", clone_url, str(path), url=clone_url)
                elif fetch:
                    self._git("fetch", "--prune", "--quiet", "origin", "+refs/heads/*:refs/heads/*", cwd=path,
                              url=clone_url)
                yield path
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _has(self, mirror: Path, sha: str) -> bool:
        return self._git("cat-file", "-e", f"{sha}^{{commit}}", cwd=mirror, check=False).returncode == 0

    @contextmanager
    def _mirror_with(self, clone_url: str, *shas: str):
        """The mirror, fetched only when it lacks one of `shas`."""
        with self._mirror(clone_url, fetch=False) as mirror:
            if not all(self._has(mirror, s) for s in shas):
                self._git("fetch", "--prune", "--quiet", "origin", "+refs/heads/*:refs/heads/*", cwd=mirror,
                          url=clone_url)
            yield mirror

    # -- the Git port --------------------------------------------------------------------------

    def checkout(self, clone_url: str, sha: str, dest: Path) -> Path:
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with self._mirror_with(clone_url, sha) as mirror:
            archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=mirror, capture_output=True,
                                     env=self._env(), timeout=self.timeout)
            if archive.returncode != 0:
                raise GitError(f"no commit {sha} in {clone_url}: {archive.stderr.decode()[-300:]}")
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return dest

    def read_file(self, clone_url: str, sha: str, path: str) -> str | None:
        with self._mirror_with(clone_url, sha) as mirror:
            proc = self._git("show", f"{sha}:{path}", cwd=mirror, check=False)
            return proc.stdout if proc.returncode == 0 else None

    def head(self, clone_url: str, branch: str) -> str | None:
        """The sha of exactly `refs/heads/<branch>`: ls-remote matches patterns on a ref's tail
        (`a/refs/heads/master` answers for `master`, `ma?ter` for it too), so the whole name is
        compared here and a name git would not accept is refused."""
        if not valid_branch(branch):
            raise GitError(f"not a branch name: {branch[:100]!r}")
        wanted = f"refs/heads/{branch}"
        proc = self._git("ls-remote", "--heads", "--", clone_url, wanted, url=clone_url)
        for line in proc.stdout.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == wanted and FULL_SHA.fullmatch(sha):
                return sha
        return None

    def default_branch(self, clone_url: str) -> str | None:
        """The branch the remote's HEAD points at (GitHub's default branch), or None."""
        proc = self._git("ls-remote", "--symref", "--", clone_url, "HEAD", check=False, url=clone_url)
        for line in proc.stdout.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                name = line[len("ref: refs/heads/"):-len("\tHEAD")]
                return name if valid_branch(name) else None
        return None

    def resolve(self, clone_url: str, ref: str) -> str:
        """A full 40-hex sha that exists, from a full sha, an abbreviation of one, or a branch
        name; NotFoundError otherwise. Refs from people are resolved before anything uses them."""
        if FULL_SHA.fullmatch(ref):
            with self._mirror_with(clone_url, ref) as mirror:
                if self._has(mirror, ref):
                    return ref
            raise NotFoundError(f"no commit {ref} in the repository")
        if SHORT_SHA.fullmatch(ref):
            with self._mirror(clone_url) as mirror:
                proc = self._git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                                 cwd=mirror, check=False)
                sha = proc.stdout.strip()
                if proc.returncode == 0 and FULL_SHA.fullmatch(sha):
                    return sha
        head = self.head(clone_url, ref) if valid_branch(ref) else None
        if head is None:
            raise NotFoundError(f"no commit or branch {ref[:100]!r} in the repository")
        return head

    def carries_unreverted(self, clone_url: str, commit: str, tip: str) -> bool:
        """True when `tip` holds `commit` and no revert of it: its changes are in `tip`. A revert
        commit has the reverted one as an ancestor, so ancestry alone cannot tell."""
        if not self.is_ancestor(clone_url, commit, tip):
            return False
        with self._mirror_with(clone_url, commit, tip) as mirror:
            proc = self._git("log", "--format=%H", "-F", f"--grep=This reverts commit {commit}",
                             f"{commit}..{tip}", cwd=mirror, check=False)
            return not proc.stdout.strip()

    def first_parent_commits(self, clone_url: str, base: str, tip: str) -> list[str]:
        with self._mirror_with(clone_url, base, tip) as mirror:
            out = self._git("rev-list", "--first-parent", f"{base}..{tip}", cwd=mirror).stdout
            return out.split()

    def local_log(self, clone_url: str, base: str | None, tip: str, limit: int = 50) -> list[dict] | None:
        """base..tip on the first-parent chain, newest first, from the mirror as it is: pages call
        this, so it never fetches, clones nor waits on the mirror's lock. None when the mirror
        lacks either commit (the worker's next fetch brings them)."""
        path = self._mirror_path(clone_url)
        if not (path / "HEAD").exists() or not FULL_SHA.fullmatch(tip) or (base and not FULL_SHA.fullmatch(base)):
            return None
        span = f"{base}..{tip}" if base else tip
        proc = self._git("log", "--first-parent", f"-n{int(limit)}", "--format=%H%x1f%an%x1f%aI%x1f%s",
                         span, "--", cwd=path, check=False)
        if proc.returncode != 0:
            return None
        fields = ("sha", "author", "at", "subject")
        return [dict(zip(fields, line.split("\x1f", 3), strict=False)) for line in proc.stdout.splitlines() if line]

    def commit_message(self, clone_url: str, sha: str) -> str:
        with self._mirror_with(clone_url, sha) as mirror:
            return self._git("log", "-1", "--format=%B", sha, cwd=mirror).stdout

    def commit_graph(self, clone_url: str, base: str | None, tip: str,
                     limit: int = 5000) -> list[tuple[str, tuple[str, ...], int]]:
        """(sha, parents, author time in UNIX seconds) of every commit in base..tip (of tip's
        history without `base`), newest first, at most `limit`: what lead times are read from."""
        with self._mirror_with(clone_url, *(s for s in (base, tip) if s)) as mirror:
            span = f"{base}..{tip}" if base else tip
            out = self._git("log", f"--max-count={int(limit)}", "--format=%H %at %P", span, "--", cwd=mirror).stdout
        graph = []
        for line in out.splitlines():
            sha, at, *parents = line.split()
            graph.append((sha, tuple(parents), int(at)))
        return graph

    def changed_paths(self, clone_url: str, base: str, tip: str) -> list[str]:
        with self._mirror_with(clone_url, base, tip) as mirror:
            return self._git("diff", "--name-only", base, tip, cwd=mirror).stdout.split()

    def same_tree(self, clone_url: str, a: str, b: str) -> bool:
        with self._mirror_with(clone_url, a, b) as mirror:
            trees = self._git("rev-parse", f"{a}^{{tree}}", f"{b}^{{tree}}", cwd=mirror).stdout.split()
            return trees[0] == trees[1]

    def is_ancestor(self, clone_url: str, ancestor: str, descendant: str) -> bool:
        with self._mirror_with(clone_url, ancestor, descendant) as mirror:
            proc = self._git("merge-base", "--is-ancestor", ancestor, descendant, cwd=mirror, check=False)
            return proc.returncode == 0

    def independent(self, clone_url: str, shas: list[str]) -> list[str]:
        """Those of `shas` that no other of them contains: the tips of their history."""
        unique = sorted(set(shas))
        if len(unique) < 2:
            return unique
        with self._mirror_with(clone_url, *unique) as mirror:
            return self._git("merge-base", "--independent", *unique, cwd=mirror).stdout.split()

    def revert_and_push(self, clone_url: str, branch: str, commits: list[str], message: str) -> RevertOutcome:
        for attempt in range(3):
            outcome = self._revert_once(clone_url, branch, commits, message)
            if outcome is not None:
                return outcome
            log.info("push of the revert raced another push; trying again (%d)", attempt + 1)
        raise TransientError(f"could not push the revert to {branch}: the branch kept moving")

    def _revert_once(self, clone_url: str, branch: str, commits: list[str], message: str) -> RevertOutcome | None:
        with tempfile.TemporaryDirectory(prefix="mainline-revert-") as tmp:
            work = Path(tmp) / "repo"
            self._git("clone", "--quiet", "--branch", branch, "--", clone_url, str(work), url=clone_url)
            todo = [c for c in commits if not self._already_reverted(work, c)]
            if not todo:
                return RevertOutcome(sha=None, reverted=())
            for sha in todo:
                parents = self._git("rev-list", "--parents", "-n", "1", sha, cwd=work).stdout.split()[1:]
                args = ["revert", "--no-edit"] + (["-m", "1"] if len(parents) > 1 else []) + [sha]
                proc = self._git(*args, cwd=work, check=False)
                if proc.returncode != 0:
                    conflicted = self._git("diff", "--name-only", "--diff-filter=U", cwd=work).stdout.split()
                    self._git("revert", "--abort", cwd=work, check=False)
                    if not conflicted:
                        raise GitError(f"git revert {sha[:12]} failed: {proc.stderr.strip()[-500:]}")
                    return RevertOutcome(sha=None, reverted=(), conflict_files=tuple(conflicted))
                body = self._git("log", "-1", "--format=%B", cwd=work).stdout.strip()
                self._git("commit", "--amend", "--quiet", "-m", f"{body}\n\n{message}", cwd=work)
            push = self._git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work, check=False,
                             url=clone_url)
            if push.returncode != 0:
                if "rejected" in push.stderr or "non-fast-forward" in push.stderr or "fetch first" in push.stderr:
                    return None
                raise GitError(f"git push failed: {push.stderr.strip()[-500:]}")
            head = self._git("rev-parse", "HEAD", cwd=work).stdout.strip()
            return RevertOutcome(sha=head, reverted=tuple(todo))

    def revert_conflicts(self, clone_url: str, branch: str, commits: list[str]) -> list[str]:
        """Try the reverts in a scratch clone (nothing is committed or pushed): the files that conflict."""
        with tempfile.TemporaryDirectory(prefix="mainline-revert-check-") as tmp:
            work = Path(tmp) / "repo"
            self._git("clone", "--quiet", "--branch", branch, "--", clone_url, str(work), url=clone_url)
            for sha in commits:
                parents = self._git("rev-list", "--parents", "-n", "1", sha, cwd=work).stdout.split()[1:]
                args = ["revert", "--no-commit"] + (["-m", "1"] if len(parents) > 1 else []) + [sha]
                proc = self._git(*args, cwd=work, check=False)
                if proc.returncode != 0:
                    conflicted = self._git("diff", "--name-only", "--diff-filter=U", cwd=work).stdout.split()
                    if not conflicted:
                        raise GitError(f"git revert {sha[:12]} failed: {proc.stderr.strip()[-500:]}")
                    return conflicted
            return []

    def _already_reverted(self, work: Path, sha: str) -> bool:
        proc = self._git("log", "--format=%H", f"--grep=This reverts commit {sha}", f"{sha}..HEAD", cwd=work,
                         check=False)
        return bool(proc.stdout.strip())
