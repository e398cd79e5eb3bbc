"""The invariant watchdog: the production branch head is live, queued, in flight, or held by a
named gate. When none of these holds for longer than a bound, say so loudly (a failing
`mainline/sync` status on the head, a notice to Slack, a metric, `status`), then queue the head."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.authority import follows_production
from bot.domain import DeployRequest, DeployState, utcnow
from bot.errors import MainlineError
from bot.ports import DeployNotice

log = logging.getLogger("mainline.watchdog")

S = DeployState
ACCOUNTED = frozenset(s.value for s in DeployState if s.in_flight) | {S.QUEUED.value}


@dataclass(frozen=True)
class SyncCheck:
    service: str
    environment: str
    head: str
    cause: str | None  # None: accounted for


def why_unsynced(pipeline, svc, env_name: str) -> str | None:
    """None when the head is accounted for, else what is wrong, in words a person can act on."""
    head = svc.head_sha
    if head is None:
        return None
    store = pipeline.store
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


def watch(pipeline, bound: float, now: datetime | None = None) -> list[SyncCheck]:
    """One pass over every production-following environment; returns what it found wrong."""
    now = now or utcnow()
    found = []
    for svc in pipeline.store.services():
        try:
            config = pipeline.authority_config(svc)
        except (MainlineError, ValueError) as exc:
            log.warning("watchdog: no config for %s: %s", svc.name, exc)
            continue
        for env in pipeline.store.environments(svc.id):
            if env.name not in config.environments or not follows_production(config, env.name):
                continue
            cause = why_unsynced(pipeline, svc, env.name)
            if cause is None:
                if env.unsynced_since is not None:
                    pipeline.store.set_unsynced(env.id, None, None)
                    if env.sync_alerted_at is not None:
                        _all_clear(pipeline, svc, env.name)
                continue
            found.append(SyncCheck(svc.name, env.name, svc.head_sha, cause))
            since = env.unsynced_since or now
            if env.unsynced_since is None:
                pipeline.store.set_unsynced(env.id, since, None)
            if now - since >= timedelta(seconds=bound) and env.sync_alerted_at is None:
                _alarm(pipeline, svc, env.name, cause, since)
                pipeline.store.set_unsynced(env.id, since, now)
    return found


def _all_clear(pipeline, svc, environment: str) -> None:
    message = f"{svc.branch} and {environment} agree again: {svc.head_sha[:12]} is accounted for"
    pipeline.store.add_event(None, svc.name, environment, "synced", message)
    pipeline._tell(DeployNotice(0, svc.name, environment, svc.repo, svc.head_sha, "live", message, kind="gate",
                                data={"gate": "sync", "status": "pass", "reason": message}))


def _for(seconds: float) -> str:
    return f"{int(seconds)} s" if seconds < 120 else f"{int(seconds // 60)} min"


def _alarm(pipeline, svc, environment: str, cause: str, since: datetime) -> None:
    message = (f"{svc.branch} and {environment} have disagreed for {_for((utcnow() - since).total_seconds())}: "
               f"{cause}. Mainline queues the head again.")
    log.warning("watchdog: %s/%s: %s", svc.name, environment, message)
    pipeline.store.add_event(None, svc.name, environment, "unsynced", message, data={"cause": cause})
    pipeline._tell(DeployNotice(0, svc.name, environment, svc.repo, svc.head_sha, "failed", message, kind="gate",
                                data={"gate": "sync", "status": "block", "reason": message,
                                      "slack_channel": pipeline._slack_channel(svc)}))
    pipeline._tell(DeployNotice(0, svc.name, environment, svc.repo, svc.head_sha, "failed", message, kind="alert",
                                data={"cause": cause, "slack_channel": pipeline._slack_channel(svc)}))
    pipeline.request(DeployRequest(svc.repo, svc.clone_url, f"refs/heads/{svc.branch}", svc.head_sha,
                                   environment=environment, requested_by="watchdog", requeue=True))
