"""Intake: a push or a merge becomes a deploy per environment that takes it, as the production
branch head's config decides. The pushed sha's own config is only validated."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from bot.authority import authority_for, check_takes
from bot.config import CONFIG_PATH, ConfigError
from bot.domain import DeployRequest
from bot.engine.context import Context
from bot.engine.notices import Notices
from bot.engine.transitions import Transitions
from bot.errors import AuthError, MainlineError, ServiceOwnedError
from bot.ports import DeployNotice
from bot.usecases.queries import Queries

log = logging.getLogger("mainline.pipeline")

_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}")


def clone_url_for(github_web_base: str, repo: str) -> str:
    """The clone URL of `owner/name` on the configured GitHub; a payload's URL is never used."""
    if not _REPO_NAME.fullmatch(repo or "") or ".." in repo:
        raise MainlineError(f"not a repository name: {repo[:100]!r}")
    return f"{github_web_base}/{repo}.git"


@dataclass
class Intake:
    ctx: Context
    notices: Notices
    queries: Queries
    transitions: Transitions

    def request(self, req: DeployRequest) -> list[dict]:
        """Record a deploy per environment that takes `req.ref`, as the production branch head's
        config decides, and queue each environment's driver. The pushed sha's own config is
        only validated: an invalid one gets a failing `mainline/config` check naming its line."""
        branch = req.ref.removeprefix("refs/heads/")
        try:
            own = self.ctx.config_at(req.clone_url, req.sha)
            authority = authority_for(self.ctx, req, branch, own)
        except ConfigError as exc:
            return self._refuse_request(req, str(exc) or f"{CONFIG_PATH} is missing at {req.sha[:12]}")
        except ServiceOwnedError as exc:
            return self._refuse_request(req, str(exc))
        config, service = authority.config, authority.service
        envs = [req.environment] if req.environment else config.environments_for(branch)
        created = []
        store = self.ctx.store
        for env in envs:
            try:
                check_takes(self.ctx, authority, env, branch, req.sha)
            except AuthError as exc:
                if req.environment:
                    raise
                log.warning("not deploying %s@%s to %s: %s", req.repo, req.sha[:12], env, exc)
                continue
            store.environment(service.id, env)
            row, new = store.create_deploy(service.id, env, req.sha, branch, req.requested_by,
                                           manual=req.manual, pull_numbers=list(req.pull_numbers))
            queued = f"{req.sha[:12]} queued for {env} by {req.requested_by}"
            if new:
                self.notices.event(row, "queued", queued)
            elif req.manual or req.requeue:
                self.transitions.queue_again(row, queued, requested_by=req.requested_by, manual=req.manual,
                                             watchdog=req.requeue)
            row = store.deploy(row.id)
            created.append(self.queries.deploy_view(row))
            self.ctx.enqueue_drive(config.service, env)
        return created

    def _refuse_request(self, req: DeployRequest, reason: str) -> list[dict]:
        log.warning("not deploying %s@%s: %s", req.repo, req.sha[:12], reason)
        self.notices.tell(DeployNotice(0, "", "", req.repo, req.sha, "failed", f"invalid {CONFIG_PATH}: {reason}",
                                       kind="gate", pull_numbers=req.pull_numbers,
                                       data={"gate": "config", "status": "block", "reason": reason}))
        return []
