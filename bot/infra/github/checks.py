"""Commit statuses and check runs: what CI says about a commit, and what Mainline says."""

from __future__ import annotations

import logging
from typing import Any

import github

from bot.domain.github import CheckRun, CheckRunReport, CiContext, CommitStatus
from bot.infra.github.base import GitHubBase, _utc
from bot.infra.github.errors import GitHubRequestError

log = logging.getLogger("mainline.github")

# Our own gate reports are check runs too; they are not CI and must not gate themselves.
OWN_CHECK_PREFIX = "mainline/"


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
            out = [CiContext(s.context, s.state, _utc(s.updated_at), "status")
                   for s in commit.get_combined_status().statuses]
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
        def write() -> CheckRun:
            made = self._repo(repo).create_check_run(report.name, report.head_sha, **self._check_run_fields(report))
            return self._check_run(made)

        return self._call(f"check run {report.name} on {repo}@{report.head_sha[:12]}", write, write=True)

    def update_check_run(self, repo: str, check_run_id: int, report: CheckRunReport) -> CheckRun:
        def write() -> CheckRun:
            run = self._repo(repo).get_check_run(check_run_id)
            run.edit(**self._check_run_fields(report))
            return self._check_run(run)

        return self._call(f"check run {check_run_id} of {repo}", write, write=True)

    def upsert_check_run(self, repo: str, report: CheckRunReport) -> CheckRun:
        def find() -> int | None:
            runs = list(self._repo(repo).get_commit(report.head_sha).get_check_runs(check_name=report.name))
            return max((r.id for r in runs if r.name == report.name), default=None)

        existing = self._call(f"check runs {report.name} on {repo}@{report.head_sha[:12]}", find)
        if existing is None:
            return self.create_check_run(repo, report)
        try:
            return self.update_check_run(repo, existing, report)
        except GitHubRequestError as exc:
            # A completed run may refuse to reopen; a fresh run then carries the new verdict.
            log.info("github: check run %s not editable (%s); creating a new one", existing, exc)
            return self.create_check_run(repo, report)
