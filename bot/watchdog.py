"""The invariant watchdog: the production branch head is live, queued, in flight, or held by a
named gate. When none of these holds for longer than a bound, say so loudly (a failing
`mainline/sync` status on the head, a notice to Slack, a metric, `status`), then queue the head."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.authority import follows_production
from bot.domain import DeployRequest, DeployState, utcnow
from bot.domain.records import ServiceRecord
from bot.engine.context import Context
from bot.engine.notices import Notices
from bot.errors import MainlineError
from bot.ports import DeployNotice, DeployStore

log = logging.getLogger("mainline.watchdog")

S = DeployState
ACCOUNTED = frozenset(s.value for s in DeployState if s.in_flight) | {S.QUEUED.value}


@dataclass(frozen=True)
class SyncCheck:
    service: str
    environment: str
    head: str
    cause: str | None  # None: accounted for


def why_unsynced(store: DeployStore, svc: ServiceRecord, env_name: str) -> str | None:
    """None when the head is accounted for, else what is wrong, in words a person can act on."""
    head = svc.head_sha
    if head is None:
        return None
    live = store.live_release(svc.id, env_name)
    if live is not None and live.sha == head:
        return None
    if store.lock_for(svc.name, env_name) is not None:
        return None  # held by a named gate: the lock says who and why
    row = next((d for d in store.deploys(svc.id, env_name, limit=200) if d.sha == head), None)
    if row is None:
        return f"the head {head[:12]} has no deploy"
    if row.state in ACCOUNTED:
        return None
    if row.state == S.LIVE.value:
        return f"the head {head[:12]} went live but {live.sha[:12] if live else 'nothing'} runs now"
    return f"the head {head[:12]} is {row.state}: {row.reason or 'no reason recorded'}"


class Watchdog:
    """Says so when a production branch and what runs disagree, and queues the head again."""

    def __init__(self, ctx: Context, notices: Notices, request: Callable[[DeployRequest], Any]):
        self.ctx = ctx
        self.notices = notices
        self.request = request

    def watch(self, bound: float, now: datetime | None = None) -> list[SyncCheck]:
        """One pass over every production-following environment; returns what it found wrong."""
        now = now or utcnow()
        found = []
        store = self.ctx.store
        for svc in store.services():
            try:
                config = self.ctx.authority_config(svc)
            except (MainlineError, ValueError) as exc:
                log.warning("watchdog: no config for %s: %s", svc.name, exc)
                continue
            for env in store.environments(svc.id):
                if env.name not in config.environments or not follows_production(config, env.name):
                    continue
                cause = why_unsynced(store, svc, env.name)
                if cause is None:
                    if env.unsynced_since is not None:
                        store.set_unsynced(env.id, None, None)
                        if env.sync_alerted_at is not None:
                            self._all_clear(svc, env.name)
                    continue
                found.append(SyncCheck(svc.name, env.name, svc.head_sha, cause))
                since = env.unsynced_since or now
                if env.unsynced_since is None:
                    store.set_unsynced(env.id, since, None)
                if now - since >= timedelta(seconds=bound) and env.sync_alerted_at is None:
                    self._alarm(svc, env.name, cause, since)
                    store.set_unsynced(env.id, since, now)
        return found

    def _all_clear(self, svc: ServiceRecord, environment: str) -> None:
        head = svc.head_sha or ""
        message = f"{svc.branch} and {environment} agree again: {head[:12]} is accounted for"
        self.ctx.store.add_event(None, svc.name, environment, "synced", message)
        self.notices.tell(DeployNotice(0, svc.name, environment, svc.repo, head, "live", message, kind="gate",
                                       data={"gate": "sync", "status": "pass", "reason": message}))

    def _alarm(self, svc: ServiceRecord, environment: str, cause: str, since: datetime) -> None:
        head = svc.head_sha or ""
        message = (f"{svc.branch} and {environment} have disagreed for "
                   f"{_for((utcnow() - since).total_seconds())}: {cause}. Mainline queues the head again.")
        log.warning("watchdog: %s/%s: %s", svc.name, environment, message)
        self.ctx.store.add_event(None, svc.name, environment, "unsynced", message, data={"cause": cause})
        channel = self.notices.slack_channel(svc)
        self.notices.tell(DeployNotice(0, svc.name, environment, svc.repo, head, "failed", message, kind="gate",
                                       data={"gate": "sync", "status": "block", "reason": message,
                                             "slack_channel": channel}))
        self.notices.tell(DeployNotice(0, svc.name, environment, svc.repo, head, "failed", message, kind="alert",
                                       data={"cause": cause, "slack_channel": channel}))
        self.request(DeployRequest(svc.repo, svc.clone_url, f"refs/heads/{svc.branch}", head,
                                   environment=environment, requested_by="watchdog", requeue=True))


def _for(seconds: float) -> str:
    return f"{int(seconds)} s" if seconds < 120 else f"{int(seconds // 60)} min"
