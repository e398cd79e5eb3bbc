"""Read models: what runs, what should, and the history of deploys. From the database alone:
a page view makes no GitHub or git call (heads are recorded by webhooks and the reconciler)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain import IN_FLIGHT, DeployState, in_sync
from bot.domain.records import DeployRecord, EventRecord
from bot.engine.context import Context
from bot.usecases.ahead import ahead_because
from bot.usecases.canary import canary_of


def iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def event_view(e: EventRecord) -> dict[str, Any]:
    """One event of the audit log, as the API, the CLI and a deploy's history show it."""
    return {"id": e.id, "deploy_id": e.deploy_id, "service": e.service, "environment": e.environment,
            "at": iso(e.at), "kind": e.kind, "message": e.message, "by": e.by, "data": e.data or {}}


class Queries:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def status(self, service: str | None = None) -> list[dict]:
        """Per service and environment: what is live, the branch head, the lock and the queue."""
        store = self.ctx.store
        rows = [store.service(service)] if service else store.services()
        out = []
        for svc in rows:
            head = svc.head_sha
            for env in store.environments(svc.id):
                live = store.live_release(svc.id, env.name)
                lock = store.lock_for(svc.name, env.name)
                queue = store.deploys(svc.id, env.name, states=[DeployState.QUEUED.value, *IN_FLIGHT])
                out.append({
                    "service": svc.name,
                    "environment": env.name,
                    "repo": svc.repo,
                    "live": {"sha": live.sha, "image": live.image, "since": iso(live.live_since)} if live else None,
                    "head": head,
                    "in_sync": in_sync(live.sha if live else None, head),
                    "ahead_because": ahead_because(store, svc.id, env.name, head,
                                                   in_sync(live.sha if live else None, head)),
                    "locked": {"by": lock.by, "reason": lock.reason} if lock else None,
                    "queue": [{"sha": d.sha, "state": d.state, "blocked_by": d.blocked_by, **canary_of(store, d)}
                              for d in queue],
                    "unsynced_since": iso(env.unsynced_since),
                })
        return out

    def deploys(self, service: str, limit: int = 20) -> list[dict]:
        svc = self.ctx.store.service(service)
        return [self.deploy_view(d, with_events=True) for d in self.ctx.store.deploys(svc.id, limit=limit)]

    def deploy_view(self, d: DeployRecord, with_events: bool = False) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": d.id, "service": self.ctx.service_by_id(d.service_id).name, "environment": d.environment,
            "sha": d.sha, "ref": d.ref, "state": d.state, "reason": d.reason, "blocked_by": d.blocked_by,
            "image": d.image, "previous_sha": d.previous_sha, "revert_sha": d.revert_sha,
            "requested_by": d.requested_by, "pull_numbers": list(d.pull_numbers or []),
            "created_at": iso(d.created_at), "started_at": iso(d.started_at), "finished_at": iso(d.finished_at),
        }
        if with_events:
            view["events"] = [event_view(e) for e in self.ctx.store.events(d.id)]
        return view
