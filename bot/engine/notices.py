"""The event log and the notices: every change of a deploy is recorded, logged and told to the
reporters (GitHub, Slack, email). A reporter never holds a deploy back."""

from __future__ import annotations

import logging
from typing import Any

from bot.config import DeployConfig
from bot.domain import GateResult
from bot.domain.records import DeployRecord, ServiceRecord
from bot.engine.context import Context
from bot.errors import MainlineError
from bot.logs import log_context
from bot.ports import DeployNotice, EventSink

log = logging.getLogger("mainline.pipeline")


class Notices:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._author_cache: dict[tuple, list[str]] = {}

    def sink(self, deploy: DeployRecord) -> EventSink:
        """Where a step's progress lines go: the deploy's event log, told to no one."""

        def sink(message: str, **data: Any) -> None:
            # A canary's verdicts are events of their own kind; its decisions are told.
            kind, notify = str(data.pop("kind", "step")), bool(data.pop("notify", False))
            self.event(deploy, kind, message, data=data or None, notify=notify)

        return sink

    def event(self, deploy: DeployRecord, kind: str, message: str, by: str | None = None,
              data: dict | None = None, notify: bool = True) -> None:
        service = self.ctx.service_by_id(deploy.service_id)
        with log_context(service=service.name, environment=deploy.environment, sha=deploy.sha, deploy_id=deploy.id):
            self._record(service, deploy, kind, message, by, data, notify)

    def _record(self, service: ServiceRecord, deploy: DeployRecord, kind: str, message: str, by: str | None,
                data: dict | None, notify: bool) -> None:
        store = self.ctx.store
        store.add_event(deploy.id, service.name, deploy.environment, kind, message, by=by, data=data or {})
        log.info("%s/%s %s: %s", service.name, deploy.environment, deploy.sha[:12], message)
        if not notify:
            return
        fresh = store.deploy(deploy.id)
        extras = {"slack_channel": self.slack_channel(service), "authors": self.authors(service, fresh)}
        self.tell(DeployNotice(deploy.id, service.name, deploy.environment, service.repo, deploy.sha,
                               fresh.state, message, kind="gate" if kind == "waiting" else "transition",
                               pull_numbers=tuple(fresh.pull_numbers or ()), requested_by=fresh.requested_by,
                               data={"reason": fresh.reason, "image": fresh.image, "previous_sha": fresh.previous_sha,
                                     "revert_sha": fresh.revert_sha, **extras, **(data or {})}))

    def authors(self, service: ServiceRecord, deploy: DeployRecord) -> list[str]:
        """GitHub logins of the authors of the PRs in this deploy (who to tell)."""
        key = (deploy.id, tuple(deploy.pull_numbers or ()))
        if key not in self._author_cache:
            authors = self._pull_authors(service, deploy)
            who = deploy.requested_by or ""
            if not authors and who.startswith("github:"):
                authors = [who.removeprefix("github:")]
            self._author_cache[key] = sorted(set(authors))
        return self._author_cache[key]

    def _pull_authors(self, service: ServiceRecord, deploy: DeployRecord) -> list[str]:
        github = self.ctx.w.github
        if github is None:
            return []
        authors, pulls = [], self.ctx.w.pulls
        for number in deploy.pull_numbers or ():
            try:
                pull = github.get_pull(service.repo, number)
                authors.append(pull.user_login)
                # Kept for pages and release notes, which never ask GitHub per view.
                if pulls is not None:
                    pulls.put(service.repo, number, pull.title, pull.user_login, pull.merge_commit_sha)
            except MainlineError as exc:
                log.warning("could not look up PR #%s of %s: %s", number, service.repo, exc)
        return authors

    @staticmethod
    def slack_channel(service: ServiceRecord) -> str | None:
        """The service's `notify.slack_channel`, from the config recorded with its last request."""
        if not service.config_text:
            return None
        try:
            return DeployConfig.model_validate_json(service.config_text).notify.slack_channel
        except ValueError:
            return None

    def tell_gates(self, deploy: DeployRecord, results: list[GateResult]) -> None:
        """One check run per gate on the sha (the waiting gate is told as it starts waiting)."""
        service = self.ctx.service_by_id(deploy.service_id)
        for r in results:
            self.tell(DeployNotice(deploy.id, service.name, deploy.environment, service.repo, deploy.sha,
                                   deploy.state, r.reason or r.gate, kind="gate",
                                   pull_numbers=tuple(deploy.pull_numbers or ()),
                                   data={"gate": r.gate, "status": r.status.value, "reason": r.reason}))

    def tell(self, notice: DeployNotice) -> None:
        for reporter in self.ctx.w.reporters:
            try:
                reporter.notify(notice)
            except Exception:  # a reporter never holds a deploy back
                log.exception("reporter %s failed on %s", type(reporter).__name__, notice.state)
