"""Commit statuses and check runs: what CI says about a commit, and what Mainline says."""

from __future__ import annotations

import logging
from typing import Any

import github

from bot.domain.github import CheckRun, CheckRunReport, CiContext, CommitStatus
from bot.infra.github.base import GitHubBase, _utc
from bot.infra.github.errors import GitHubRequestError, PermissionDenied

log = logging.getLogger("mainline.github")

# Our own gate reports are check runs too; they are not CI and must not gate themselves.
OWN_CHECK_PREFIX = "mainline/"
# A check run's conclusion as a commit status's state (statuses know no neutral nor skipped).
STATUS_OF = {"success": "success", "neutral": "success", "skipped": "success", "failure": "failure",
             "action_required": "failure", "cancelled": "error", "timed_out": "error", "stale": "error"}


def _check_state(status: str, conclusion: str | None) -> str:
    if status != "completed":
        return "pending"
    if conclusion in ("success", "neutral", "skipped"):
        return "success"
    return "failure"


class ChecksMixin(GitHubBase):
    # -- CI signals -------------------------------------------------------------------------

    def ci_contexts(self, repo: str, sha: str) -> list[CiContext]:
        def read() -> list[CiContext]:
            commit = self._repo(repo).get_commit(sha)
            # Our own results are not CI either, also when they went out as statuses.
            out = [CiContext(s.context, s.state, _utc(s.updated_at), "status")
                   for s in commit.get_combined_status().statuses if not s.context.startswith(OWN_CHECK_PREFIX)]
            newest: dict[str, Any] = {}
            for run in commit.get_check_runs():
                if run.name.startswith(OWN_CHECK_PREFIX):
                    continue
                if run.name not in newest or run.id > newest[run.name].id:
                    newest[run.name] = run
            for run in newest.values():
                out.append(CiContext(run.name, _check_state(run.status, run.conclusion),
                                     _utc(run.completed_at or run.started_at), "check_run"))
            return out

        return self._call(f"CI contexts of {repo}@{sha[:12]}", read)

    def create_status(self, repo: str, sha: str, status: CommitStatus) -> CommitStatus:
        def write() -> CommitStatus:
            made = self._repo(repo).get_commit(sha).create_status(
                status.state, target_url=status.target_url or github.GithubObject.NotSet,
                description=status.description, context=status.context)
            return CommitStatus(made.context or status.context, made.state, made.description or "",
                                made.target_url or "", _utc(made.updated_at))

        return self._call(f"status {status.context} on {repo}@{sha[:12]}", write, write=True)

    # -- check runs -------------------------------------------------------------------------

    @staticmethod
    def _check_run(run) -> CheckRun:
        output = run.output
        return CheckRun(run.id, run.name, run.head_sha, run.status, run.conclusion,
                        (output.title if output else "") or "", (output.summary if output else "") or "",
                        run.html_url or "", _utc(run.completed_at))

    @staticmethod
    def _check_run_fields(report: CheckRunReport) -> dict:
        fields: dict[str, Any] = {
            "status": report.status,
            "output": {"title": report.title or report.name, "summary": report.summary or report.title or report.name},
        }
        if report.status == "completed" and report.conclusion:
            fields["conclusion"] = report.conclusion
        if report.details_url:
            fields["details_url"] = report.details_url
        return fields

    def create_check_run(self, repo: str, report: CheckRunReport) -> CheckRun:
        if self.checks_as_statuses:
            return self._as_status(repo, report)
        try:
            return self._create_check_run(repo, report)
        except PermissionDenied as exc:
            return self._fall_back(repo, report, exc)

    def _create_check_run(self, repo: str, report: CheckRunReport) -> CheckRun:
        def write() -> CheckRun:
            fields = self._check_run_fields(report)
            made = self._repo(repo, as_app=True).create_check_run(report.name, report.head_sha, **fields)
            return self._check_run(made)

        return self._call(f"check run {report.name} on {repo}@{report.head_sha[:12]}", write, write=True)

    def update_check_run(self, repo: str, check_run_id: int, report: CheckRunReport) -> CheckRun:
        def write() -> CheckRun:
            run = self._repo(repo, as_app=True).get_check_run(check_run_id)
            run.edit(**self._check_run_fields(report))
            return self._check_run(run)

        return self._call(f"check run {check_run_id} of {repo}", write, write=True)

    def upsert_check_run(self, repo: str, report: CheckRunReport) -> CheckRun:
        if self.checks_as_statuses:
            return self._as_status(repo, report)
        try:
            return self._upsert_check_run(repo, report)
        except PermissionDenied as exc:
            return self._fall_back(repo, report, exc)

    def _upsert_check_run(self, repo: str, report: CheckRunReport) -> CheckRun:
        def find() -> int | None:
            commit = self._repo(repo, as_app=True).get_commit(report.head_sha)
            runs = list(commit.get_check_runs(check_name=report.name))
            return max((r.id for r in runs if r.name == report.name), default=None)

        existing = self._call(f"check runs {report.name} on {repo}@{report.head_sha[:12]}", find)
        if existing is None:
            return self._create_check_run(repo, report)
        try:
            return self.update_check_run(repo, existing, report)
        except GitHubRequestError as exc:
            # A completed run may refuse to reopen; a fresh run then carries the new verdict.
            log.info("github: check run %s not editable (%s); creating a new one", existing, exc)
            return self._create_check_run(repo, report)

    # -- without an App: commit statuses ----------------------------------------------------

    def _fall_back(self, repo: str, report: CheckRunReport, exc: PermissionDenied) -> CheckRun:
        """A personal token may not write check runs: say so once, then use statuses. An App
        lacking the permission is an error naming it (a setting to fix, not a mode)."""
        if not exc.personal_token or self.has_app:
            raise exc
        with self._lock:
            switched, self.checks_as_statuses = not self.checks_as_statuses, True
        if switched:
            log.warning("github: GitHub refused a check run for GITHUB_TOKEN (only GitHub Apps may create check "
                        "runs); Mainline's results are posted as commit statuses from now on")
        return self._as_status(repo, report)

    def _as_status(self, repo: str, report: CheckRunReport) -> CheckRun:
        state = "pending" if report.status != "completed" else STATUS_OF.get(report.conclusion or "", "failure")
        description = " ".join((report.title or report.name).split())
        if len(description) > 140:
            description = description[:139] + "…"
        made = self.create_status(repo, report.head_sha, CommitStatus(
            report.name, state, description, report.details_url or ""))
        return CheckRun(0, report.name, report.head_sha, report.status, report.conclusion, report.title,
                        report.summary, made.target_url, made.updated_at)
