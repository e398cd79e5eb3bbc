"""Bare git repositories for the GitHub stand-in, driven through git plumbing."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ZERO_SHA = "0" * 40


class GitError(Exception):
    """A git command failed."""


class MergeConflictError(GitError):
    """Two commits cannot be merged without a human."""

    def __init__(self, files: list[str]):
        super().__init__(f"merge conflict in {', '.join(files)}")
        self.files = files


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    date: str  # ISO 8601, UTC


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: list[str]
    author: Person
    committer: Person
    message: str


@dataclass(frozen=True)
class FileChange:
    status: str  # added | removed | modified
    path: str


# Commits must not pick up the host's git identity or config.
_BASE_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}


class BareRepo:
    """One bare repository on disk."""

    def __init__(self, path: Path):
        self.path = path

    def git(self, *args: str, input: bytes | None = None, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_BASE_ENV, **(env or {})}
        proc = subprocess.run(["git", "--git-dir", str(self.path), *args], input=input,
                              capture_output=True, env=full_env)
        if check and proc.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
        return proc

    def out(self, *args: str, **kwargs) -> str:
        return self.git(*args, **kwargs).stdout.decode().strip()

    @classmethod
    def init(cls, path: Path, default_branch: str) -> BareRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        subprocess.run(["git", "init", "-q", "--bare", "-b", default_branch, str(path)],
                       check=True, capture_output=True, env={**os.environ, **_BASE_ENV})
        repo.git("config", "http.receivepack", "true")
        repo.git("config", "uploadpack.allowAnySHA1InWant", "true")
        return repo

    # -- reading -----------------------------------------------------------------

    def resolve(self, ref: str) -> str | None:
        """Return the commit sha a branch, tag or sha names, or None."""
        candidates = [ref] if len(ref) == 40 else [f"refs/heads/{ref}", f"refs/tags/{ref}", ref]
        for name in candidates:
            proc = self.git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
            if proc.returncode == 0:
                return proc.stdout.decode().strip()
        return None

    def branches(self) -> dict[str, str]:
        text = self.out("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
        result = {}
        for line in text.splitlines():
            ref, sha = line.split()
            result[ref.removeprefix("refs/heads/")] = sha
        return result

    def refs(self) -> dict[str, str]:
        text = self.out("for-each-ref", "--format=%(refname) %(objectname)")
        return dict(line.split() for line in text.splitlines())

    def commit(self, sha: str) -> CommitInfo:
        fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        fields = self.out("show", "-s", f"--format={fmt}", sha, "--").split("\x00")
        return CommitInfo(
            sha=fields[0], tree=fields[1], parents=fields[2].split(),
            author=Person(fields[3], fields[4], _utc(fields[5])),
            committer=Person(fields[6], fields[7], _utc(fields[8])),
            message=fields[9].strip(),
        )

    def log(self, sha: str, limit: int = 30) -> list[str]:
        return self.out("rev-list", f"--max-count={limit}", sha).split()

    def commits_between(self, base: str, head: str) -> list[str]:
        """Commits reachable from head but not base, oldest first."""
        return self.out("rev-list", "--reverse", f"{base}..{head}").split()

    def merge_base(self, a: str, b: str) -> str | None:
        proc = self.git("merge-base", a, b, check=False)
        return proc.stdout.decode().strip() or None

    def changes(self, old: str | None, new: str) -> list[FileChange]:
        args = ["diff-tree", "-r", "--no-renames", "--name-status", "-z"]
        args += [old, new] if old else ["--root", new]
        parts = [p for p in self.out(*args).split("\x00") if p]
        if not old and parts and len(parts[0]) == 40:
            parts = parts[1:]  # --root prints the commit sha first
        names = {"A": "added", "D": "removed"}
        return [FileChange(names.get(parts[i][0], "modified"), parts[i + 1])
                for i in range(0, len(parts) - 1, 2)]

    def read_file(self, sha: str, path: str) -> bytes | None:
        proc = self.git("cat-file", "blob", f"{sha}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def blob_sha(self, sha: str, path: str) -> str | None:
        proc = self.git("rev-parse", "--verify", "--quiet", f"{sha}:{path}", check=False)
        return proc.stdout.decode().strip() or None

    # -- writing -----------------------------------------------------------------

    def write_commit(self, parents: list[str], files: Mapping[str, bytes | str | None],
                     message: str, author: Person) -> str:
        """Write a commit whose tree is the first parent's with `files` applied (None deletes)."""
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parents:
                self.git("read-tree", parents[0], env=env)
            for path, content in files.items():
                if content is None:
                    # --index-info with mode 0 removes the entry; --force-remove wants a work tree.
                    self.out("update-index", "--index-info", env=env, input=f"0 {'0' * 40}\t{path}\n".encode())
                    continue
                data = content.encode() if isinstance(content, str) else content
                blob = self.out("hash-object", "-w", "--stdin", input=data)
                # Files pushed as bytes carry no mode: programs and scripts are executable, as a
                # developer's `git add` of them would record.
                mode = "100755" if data.startswith((b"\x7fELF", b"#!")) else "100644"
                self.git("update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
            tree = self.out("write-tree", env=env)
        return self.commit_tree(tree, parents, message, author)

    def commit_tree(self, tree: str, parents: list[str], message: str, author: Person) -> str:
        env = {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email,
        }
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.out(*args, input=message.encode(), env=env)

    def merge(self, base_sha: str, head_sha: str, message: str, author: Person) -> str:
        """Make a real two-parent merge commit, or raise MergeConflictError."""
        proc = self.git("merge-tree", "--write-tree", "--name-only", "--no-messages",
                        base_sha, head_sha, check=False)
        lines = proc.stdout.decode().split("\n")
        if proc.returncode == 1:
            raise MergeConflictError(sorted({line for line in lines[1:] if line}))
        if proc.returncode != 0:
            raise GitError(proc.stderr.decode(errors="replace").strip())
        return self.commit_tree(lines[0].strip(), [base_sha, head_sha], message, author)

    def update_ref(self, ref: str, new: str, old: str | None = None) -> None:
        """Move a ref; with `old`, only if it still points there (compare-and-swap)."""
        self.git("update-ref", ref, new, *([old] if old else []))

    def delete_ref(self, ref: str) -> None:
        self.git("update-ref", "-d", ref)


def _utc(iso: str) -> str:
    """Turn git's strict ISO date into GitHub's `YYYY-MM-DDTHH:MM:SSZ`."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
