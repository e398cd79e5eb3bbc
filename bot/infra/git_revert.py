"""The revert Mainline pushes (and its dry run): a fresh clone, `git revert`, a push that may race."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from bot.errors import TransientError
from bot.infra.git_base import GitBase, GitError
from bot.ports import RevertOutcome

log = logging.getLogger("mainline.git")


class GitReverts(GitBase):
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

    def reapply(self, clone_url: str, branch: str, commits: list[str], message: str) -> RevertOutcome:
        """Cherry-pick `commits` (oldest first) onto `branch` and push: the changes a revert took
        back, put back. A change the branch already holds is skipped; a conflict pushes nothing."""
        with tempfile.TemporaryDirectory(prefix="mainline-reapply-") as tmp:
            work = Path(tmp) / "repo"
            self._git("clone", "--quiet", "--branch", branch, "--", clone_url, str(work), url=clone_url)
            done = []
            for sha in commits:
                parents = self._git("rev-list", "--parents", "-n", "1", sha, cwd=work).stdout.split()[1:]
                patch = Path(tmp) / "change.patch"
                patch.write_text(self._git("diff", "--binary", parents[0], sha, cwd=work).stdout)
                # Already on the branch (put back before a crash, or by hand): nothing to do.
                if not patch.read_text().strip() or self._git("apply", "--check", "--reverse", str(patch),
                                                              cwd=work, check=False).returncode == 0:
                    continue
                args = ["cherry-pick", "-x"] + (["-m", "1"] if len(parents) > 1 else []) + [sha]
                if self._git(*args, cwd=work, check=False).returncode != 0:
                    conflicted = self._git("diff", "--name-only", "--diff-filter=U", cwd=work).stdout.split()
                    self._git("cherry-pick", "--abort", cwd=work, check=False)
                    return RevertOutcome(sha=None, conflict_files=tuple(conflicted) or ("(unknown)",))
                body = self._git("log", "-1", "--format=%B", cwd=work).stdout.strip()
                self._git("commit", "--amend", "--quiet", "-m", f"Reapply: {body}\n\n{message}", cwd=work)
                done.append(sha)
            if not done:
                return RevertOutcome(sha=None)
            self._git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work, url=clone_url)
            return RevertOutcome(sha=self._git("rev-parse", "HEAD", cwd=work).stdout.strip(), reverted=tuple(done))

    def _already_reverted(self, work: Path, sha: str) -> bool:
        proc = self._git("log", "--format=%H", f"--grep=This reverts commit {sha}", f"{sha}..HEAD", cwd=work,
                         check=False)
        return bool(proc.stdout.strip())
