"""The facade the app, the CLI and the handlers use: one `Pipeline` composing the engine
(bot/engine) and the use cases (bot/usecases). It holds no logic of its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.config import DeployConfig
from bot.culprit.manual import request_bisect
from bot.domain import DeployRequest, GateResult
from bot.domain.records import ServiceRecord
from bot.engine.context import Context, PipelineOptions
from bot.engine.driver import MAX_STEP_FAILURES, MAX_TRANSIENT_FAILURES, Driver
from bot.engine.notices import Notices
from bot.engine.picking import Picker
from bot.engine.steps import INFRASTRUCTURE
from bot.engine.transitions import Transitions
from bot.infra.db.pull_requests import PullRequests
from bot.ports import DeployNotice, DeployStore, Wiring
from bot.usecases.canary import canary_command
from bot.usecases.commands import Commands
from bot.usecases.intake import Intake, clone_url_for
from bot.usecases.queries import Queries
from bot.usecases.reconcile import Reconciler

__all__ = ["INFRASTRUCTURE", "MAX_STEP_FAILURES", "MAX_TRANSIENT_FAILURES", "Pipeline", "PipelineOptions",
           "Wiring", "wait_until"]


class Pipeline:
    def __init__(self, wiring: Wiring, options: PipelineOptions, owner: str | None = None):
        if wiring.pulls is None:
            wiring.pulls = PullRequests(wiring.store)  # PR titles and authors, kept for the pages
        self.ctx = ctx = Context(wiring, options, owner)
        self.notices = Notices(ctx)
        self.queries = Queries(ctx)
        # apply() may ask for a deploy (the branch head after a revert), and intake may queue an
        # ended deploy again through apply(): each reaches the other through the pipeline.
        self.transitions = Transitions(ctx, self.notices, lambda req: self.intake.request(req))
        self.intake = Intake(ctx, self.notices, self.queries, self.transitions)
        self.picker = Picker(ctx, self.notices, self.transitions)
        self.driver = Driver(ctx, self.notices, self.transitions, self.picker)
        self.commands = Commands(ctx, self.notices, self.transitions, self.queries)
        self.reconciler = Reconciler(ctx, self.notices, self.intake.request)

    # The ports, the options and the owner live in the context, shared by every part.
    @property
    def w(self) -> Wiring:
        return self.ctx.w

    @property
    def store(self) -> DeployStore:
        return self.ctx.store

    @property
    def opts(self) -> PipelineOptions:
        return self.ctx.opts

    @opts.setter
    def opts(self, value: PipelineOptions) -> None:
        self.ctx.opts = value

    @property
    def owner(self) -> str:
        return self.ctx.owner

    # -- intake ----------------------------------------------------------------------------------

    def clone_url_for(self, repo: str) -> str:
        return clone_url_for(self.ctx.opts.github_web_base, repo)

    def config_at(self, clone_url: str, sha: str) -> DeployConfig:
        return self.ctx.config_at(clone_url, sha)

    def authority_config(self, service: ServiceRecord) -> DeployConfig:
        return self.ctx.authority_config(service)

    def request(self, req: DeployRequest) -> list[dict]:
        return self.intake.request(req)

    # -- the engine ------------------------------------------------------------------------------

    def drive(self, service_name: str, environment: str) -> None:
        self.driver.drive(service_name, environment)

    def gate(self, deploy: Any) -> list[GateResult]:
        return self.picker.gate(deploy)

    def reconcile(self) -> int:
        return self.reconciler.reconcile()

    # -- people's commands -------------------------------------------------------------------------

    def request_deploy(self, service: str, environment: str, ref: str | None, by: str, *, force: bool = False,
                       reason: str | None = None, restart: bool = False) -> dict:
        return self.commands.request_deploy(service, environment, ref, by, force=force, reason=reason,
                                            restart=restart)

    def rollback(self, service: str, environment: str, by: str, to: str | None = None) -> dict:
        return self.commands.rollback(service, environment, by, to)

    def lock(self, service: str, environment: str, by: str, reason: str) -> None:
        self.commands.lock(service, environment, by, reason)

    def unlock(self, service: str, environment: str, by: str) -> None:
        self.commands.unlock(service, environment, by)

    def freeze(self, by: str, reason: str) -> None:
        self.commands.freeze(by, reason)

    def unfreeze(self, by: str) -> None:
        self.commands.unfreeze(by)

    def canary(self, service: str, environment: str, action: str, by: str) -> dict:
        """Promote, pause or abort the running canary (bot/usecases/canary.py)."""
        return canary_command(self, service, environment, action, by)

    def bisect(self, service: str, environment: str, by: str, good: str | None = None,
               bad: str | None = None) -> dict:
        """Ask the worker which commit of a release reverted in full broke it (bot/culprit/manual.py)."""
        return request_bisect(self, service, environment, by, good=good, bad=bad)

    def approve(self, deploy_id: int, by: str, approved: bool, reason: str = "",
                where: tuple[str, str] | None = None) -> None:
        self.commands.approve(deploy_id, by, approved, reason, where)

    def record_event(self, service: str, environment: str, kind: str, message: str, by: str | None = None) -> None:
        self.commands.record_event(service, environment, kind, message, by)

    def service_config(self, service: str) -> DeployConfig:
        return self.commands.service_config(service)

    def authorise(self, service: str, environment: str, who: str, config: DeployConfig | None = None) -> None:
        self.commands.authorise(service, environment, who, config)

    # -- reading ---------------------------------------------------------------------------------

    def status(self, service: str | None = None) -> list[dict]:
        return self.queries.status(service)

    def deploys(self, service: str, limit: int = 20) -> list[dict]:
        return self.queries.deploys(service, limit)

    def deploy_view(self, d: Any, with_events: bool = False) -> dict:
        return self.queries.deploy_view(d, with_events)

    def _tell(self, notice: DeployNotice) -> None:
        self.notices.tell(notice)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
