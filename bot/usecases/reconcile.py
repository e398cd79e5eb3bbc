"""The reconciler: re-derive the work from observed state. Drivers whose lease expired, inbox
deliveries whose task was lost, merges whose webhook never came, and the sync watchdog."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.domain import DeployRequest
from bot.domain.records import ServiceRecord
from bot.engine.context import Context
from bot.engine.notices import Notices
from bot.errors import MainlineError
from bot.usecases.desired_state import DesiredState
from bot.watchdog import Watchdog

log = logging.getLogger("mainline.pipeline")


class Reconciler:
    def __init__(self, ctx: Context, notices: Notices, request: Callable[[DeployRequest], object]):
        self.ctx = ctx
        self.notices = notices
        self.request = request
        self.watchdog = Watchdog(ctx, notices, request)
        self.desired = DesiredState(ctx, notices)
        self._refused: dict[int, str] = {}  # service id -> a head whose request was refused

    def reconcile(self) -> int:
        """One pass; returns how many drivers it queued."""
        ctx, queued = self.ctx, 0
        for env in ctx.store.expired_or_idle_envs():
            ctx.enqueue_drive(ctx.service_by_id(env.service_id).name, env.name)
            queued += 1
        if ctx.w.queue is not None:
            for delivery_id in ctx.store.unprocessed_deliveries(older_than=ctx.opts.redeliver_after):
                ctx.w.queue.process_delivery(delivery_id)
        for svc in ctx.store.services():
            queued += self._pick_up_missed_merge(svc)
        self.watchdog.watch(ctx.opts.sync_bound)
        self.desired.keep()  # what runs matches the live releases; never a deploy
        return queued

    def _safe_head(self, svc: ServiceRecord) -> str | None:
        try:
            return self.ctx.w.git.head(svc.clone_url, svc.branch)
        except MainlineError as exc:
            log.warning("could not read the head of %s: %s", svc.repo, exc)
            return None

    def _pick_up_missed_merge(self, svc: ServiceRecord) -> int:
        head = self._safe_head(svc)
        if head is None:
            return 0
        if head != svc.head_sha:
            self.ctx.store.set_head(svc.id, head)
        known = {d.sha for d in self.ctx.store.deploys(svc.id, limit=200)}
        if head in known or self._refused.get(svc.id) == head:
            return 0
        log.info("reconciler: %s head %s has no deploy; queueing it", svc.name, head[:12])
        created = self.request(DeployRequest(svc.repo, svc.clone_url, f"refs/heads/{svc.branch}", head,
                                             requested_by="reconciler"))
        if not created:
            # Refused (its config, or no environment takes it) and said on its check once: a
            # pass every few seconds would only say it again. A new head is looked at anew.
            self._refused[svc.id] = head
        return 1
