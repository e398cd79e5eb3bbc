"""What every git command of Mainline shares: the identity, credentials through the environment,
errors without argv, and the cached mirror per repository."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from bot.errors import MainlineError, TransientError

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


class GitBase:
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

