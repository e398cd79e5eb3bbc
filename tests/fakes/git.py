"""A Git port over a tiny in-memory commit graph: commits with parents, whole trees and
messages, branches per clone URL, and reverts that say `This reverts commit <sha>` as git's do."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from bot.errors import FileTooLargeError, NotFoundError
from bot.ports import RevertOutcome


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    tree: dict[str, str]
    message: str


class FakeGit:
    def __init__(self) -> None:
        self.commits: dict[str, Commit] = {}
        self.branches: dict[tuple[str, str], str] = {}
        self.conflicting: set[str] = set()  # commits whose revert conflicts
        self.pushes: list[tuple[str, str]] = []  # (branch, sha) of each revert pushed
        self.checkouts: list[str] = []
        self.faults: dict[str, Exception] = {}  # method name -> error it raises (a git outage)

    # -- making history (the test's side) ----------------------------------------------------------

    def commit(self, clone_url: str, branch: str, changes: dict[str, str | None], message: str,
               parents: tuple[str, ...] | None = None) -> str:
        """A commit on `branch` applying `changes` (None deletes a path) to its first parent's tree."""
        head = self.branches.get((clone_url, branch))
        parents = parents if parents is not None else ((head,) if head else ())
        tree = dict(self.commits[parents[0]].tree) if parents else {}
        for path, text in changes.items():
            if text is None:
                tree.pop(path, None)
            else:
                tree[path] = text
        sha = hashlib.sha1(f"{len(self.commits)}:{message}:{parents}".encode()).hexdigest()
        self.commits[sha] = Commit(sha, parents, tree, message)
        self.branches[(clone_url, branch)] = sha
        return sha

    # -- the port --------------------------------------------------------------------------------------

    def checkout(self, clone_url: str, sha: str, dest: Path) -> Path:
        self.checkouts.append(sha)
        for path, text in self.commits[sha].tree.items():
            (dest / path).parent.mkdir(parents=True, exist_ok=True)
            (dest / path).write_text(text)
        return dest

    def read_file(self, clone_url: str, sha: str, path: str, max_bytes: int | None = None) -> str | None:
        text = self.commits[sha].tree.get(path)
        if text is not None and max_bytes is not None and len(text.encode()) > max_bytes:
            raise FileTooLargeError(path, len(text.encode()), max_bytes)
        return text

    def head(self, clone_url: str, branch: str) -> str | None:
        if "head" in self.faults:
            raise self.faults["head"]
        return self.branches.get((clone_url, branch))

    def default_branch(self, clone_url: str) -> str | None:
        return "master"

    def resolve(self, clone_url: str, ref: str) -> str:
        found = next((sha for sha in self.commits if sha.startswith(ref)), None) or self.head(clone_url, ref)
        if found is None:
            raise NotFoundError(f"no commit or branch {ref!r} in the repository")
        return found

    def commit_message(self, clone_url: str, sha: str) -> str:
        return self.commits[sha].message

    def changed_paths(self, clone_url: str, base: str, tip: str) -> list[str]:
        a, b = self.commits[base].tree, self.commits[tip].tree
        return sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))

    def same_tree(self, clone_url: str, a: str, b: str) -> bool:
        return self.commits[a].tree == self.commits[b].tree

    def _ancestors(self, sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.commits[current].parents)
        return seen

    def is_ancestor(self, clone_url: str, ancestor: str, descendant: str) -> bool:
        return ancestor in self._ancestors(descendant)

    def independent(self, clone_url: str, shas: list[str]) -> list[str]:
        unique = sorted(set(shas))
        return [s for s in unique if not any(o != s and s in self._ancestors(o) for o in unique)]

    def first_parent_commits(self, clone_url: str, base: str, tip: str) -> list[str]:
        out, current = [], tip
        while current and current != base:
            out.append(current)
            parents = self.commits[current].parents
            current = parents[0] if parents else ""
        return out

    def _reverted_in(self, commit: str, tip: str) -> bool:
        marker = f"This reverts commit {commit}"
        return any(marker in self.commits[s].message for s in self._ancestors(tip) - self._ancestors(commit))

    def carries_unreverted(self, clone_url: str, commit: str, tip: str) -> bool:
        return self.is_ancestor(clone_url, commit, tip) and not self._reverted_in(commit, tip)

    def reapply(self, clone_url: str, branch: str, commits: list[str], message: str) -> RevertOutcome:
        head = self.branches[(clone_url, branch)]
        done = []
        for sha in commits:  # oldest first
            parent, tree = self.commits[sha].parents[0], self.commits[self.branches[(clone_url, branch)]].tree
            paths = self.changed_paths(clone_url, parent, sha)
            if all(tree.get(p) == self.commits[sha].tree.get(p) for p in paths):
                continue  # already there
            if any(tree.get(p) != self.commits[parent].tree.get(p) for p in paths):
                self.branches[(clone_url, branch)] = head
                return RevertOutcome(sha=None, conflict_files=tuple(paths))
            self.commit(clone_url, branch, {p: self.commits[sha].tree.get(p) for p in paths},
                        f"Reapply\n\n(cherry picked from commit {sha})\n\n{message}")
            done.append(sha)
        if done:
            self.pushes.append((branch, self.branches[(clone_url, branch)]))
        return RevertOutcome(sha=self.branches[(clone_url, branch)] if done else None, reverted=tuple(done))

    def revert_conflicts(self, clone_url: str, branch: str, commits: list[str]) -> list[str]:
        """As git would see it with whole-file contents: reverting a commit conflicts where a later
        commit not reverted with it changed the same file again."""
        tree = dict(self.commits[self.branches[(clone_url, branch)]].tree)
        conflicts: set[str] = set()
        for sha in commits:  # newest first
            commit = self.commits[sha]
            before = self.commits[commit.parents[0]].tree
            for path in self.changed_paths(clone_url, commit.parents[0], sha):
                if tree.get(path) != commit.tree.get(path) or sha in self.conflicting:
                    conflicts.add(path)
                else:
                    tree[path] = before.get(path)  # type: ignore[assignment]
        return sorted(conflicts)

    def revert_and_push(self, clone_url: str, branch: str, commits: list[str], message: str) -> RevertOutcome:
        head = self.branches[(clone_url, branch)]
        todo = [c for c in commits if not self._reverted_in(c, head)]
        if not todo:
            return RevertOutcome(sha=None, reverted=())
        if self.conflicting & set(todo):
            return RevertOutcome(sha=None, conflict_files=("app.py",))
        for sha in todo:
            parent = self.commits[sha].parents[0]
            before = self.commits[parent].tree
            undo = {p: before.get(p) for p in self.changed_paths(clone_url, parent, sha)}
            self.commit(clone_url, branch, undo, f"Revert\n\nThis reverts commit {sha}.\n\n{message}")
        new = self.branches[(clone_url, branch)]
        self.pushes.append((branch, new))
        return RevertOutcome(sha=new, reverted=tuple(todo))
