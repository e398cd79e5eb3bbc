"""Git over smart HTTP with the real `git` client: a cached mirror per repository for reads
(here), a fresh clone for the revert we push (git_revert), the plumbing both share (git_base)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.errors import FileTooLargeError, NotFoundError
from bot.infra.git_base import BOT_EMAIL, BOT_NAME, FULL_SHA, SHORT_SHA, GitError, git_failure, valid_branch
from bot.infra.git_revert import GitReverts

__all__ = ["BOT_EMAIL", "BOT_NAME", "FULL_SHA", "SHORT_SHA", "GitClient", "GitError", "git_failure", "valid_branch"]


class GitClient(GitReverts):
    """The Git port."""


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

    def read_file(self, clone_url: str, sha: str, path: str, max_bytes: int | None = None) -> str | None:
        """The file at `sha`, None when it is not there. With `max_bytes`, a larger file is never
        read into memory: FileTooLargeError (a repository chooses its files' sizes)."""
        with self._mirror_with(clone_url, sha) as mirror:
            if max_bytes is not None:
                size = self._git("cat-file", "-s", f"{sha}:{path}", cwd=mirror, check=False)
                if size.returncode != 0:
                    return None
                if int(size.stdout.strip() or 0) > max_bytes:
                    raise FileTooLargeError(path, int(size.stdout.strip()), max_bytes)
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
