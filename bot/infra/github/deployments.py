"""Deployments and their statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.github import Deployment, DeploymentStatus, DeploymentStatusReport
from bot.infra.github.base import GitHubBase, _utc


class DeploymentsMixin(GitHubBase):
    # -- deployments ------------------------------------------------------------------------

    @staticmethod
    def _deployment(d) -> Deployment:
        return Deployment(d.id, d.sha, d.ref, d.environment, d.description or "", _utc(d.created_at),
                          d.creator.login if d.creator else "")

    def find_deployments(self, repo: str, sha: str, environment: str) -> list[Deployment]:
        def read() -> list[Deployment]:
            found = self._repo(repo).get_deployments(sha=sha, environment=environment)
            return [self._deployment(d) for d in found]

        return self._call(f"deployments of {repo}@{sha[:12]} to {environment}", read)

    def create_deployment(self, repo: str, sha: str, environment: str, description: str = "") -> Deployment:
        def write() -> Deployment:
            made = self._repo(repo).create_deployment(
                ref=sha, environment=environment, auto_merge=False, required_contexts=[],
                description=description, production_environment=environment == "production")
            return self._deployment(made)

        return self._call(f"deployment of {repo}@{sha[:12]} to {environment}", write, write=True)

    @staticmethod
    def _deployment_status_from(data: dict) -> DeploymentStatus:
        created = data.get("created_at")
        return DeploymentStatus(
            int(data["id"]), data["state"], data.get("description") or "", data.get("environment") or "",
            data.get("environment_url") or "", data.get("log_url") or data.get("target_url") or "",
            datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None)

    def deployment_statuses(self, repo: str, deployment_id: int) -> list[DeploymentStatus]:
        def read() -> list[DeploymentStatus]:
            statuses = self._repo(repo).get_deployment(deployment_id).get_statuses()
            return [DeploymentStatus(s.id, s.state, s.description or "", s.environment or "",
                                     s.environment_url or "", s.log_url or s.target_url or "",
                                     _utc(s.created_at)) for s in statuses]

        return self._call(f"statuses of deployment {deployment_id} of {repo}", read)

    def create_deployment_status(self, repo: str, deployment_id: int,
                                 report: DeploymentStatusReport) -> DeploymentStatus:
        # PyGithub's create_status knows no log_url, so this one goes through its requester.
        payload: dict[str, Any] = {"state": report.state, "description": report.description[:140]}
        if report.environment_url:
            payload["environment_url"] = report.environment_url
        if report.log_url:
            payload["log_url"] = report.log_url

        def write() -> DeploymentStatus:
            answer = self._post_json(repo, f"/deployments/{deployment_id}/statuses", payload)
            return self._deployment_status_from(answer)

        return self._call(f"status {report.state} of deployment {deployment_id} of {repo}", write, write=True)
