"""A person steps into a running canary: promote (go on to the next step now), pause (hold the
weight where it is, judging nothing, until promoted or aborted) or abort (weight 0, the canary
removed, the release rolled back and reverted like a failed one). The worker's canary reads the
command from the deploy's event log (bot/engine/canary.py), within a fraction of a second."""

from __future__ import annotations

from typing import Any

from bot.domain import DeployState
from bot.engine.canary import ACTIONS, COMMAND
from bot.errors import MainlineError, NotFoundError


def canary_command(pipeline: Any, service: str, environment: str, action: str, by: str) -> dict:
    """Record `action` for the canary of `service` in `environment`; the deploy it applies to."""
    if action not in ACTIONS:
        raise MainlineError(f"a canary takes {', '.join(ACTIONS)}, not {action[:20]!r}")
    store = pipeline.ctx.store
    svc = store.service(service)
    config = pipeline.ctx.authority_config(svc)
    env = config.environments.get(environment)
    if env is None:
        raise NotFoundError(f"{service} has no environment {environment!r}")
    if env.strategy != "canary":
        raise MainlineError(f"{service} in {environment} rolls out by {env.strategy}, not by canary")
    running = list(store.deploys(svc.id, environment, states=[DeployState.ROLLING_OUT.value]))
    if not running:
        raise NotFoundError(f"no canary of {service} is running in {environment}")
    deploy = running[0]
    store.add_event(deploy.id, service, environment, COMMAND, f"{by} asks the canary of {deploy.sha[:12]} to {action}",
                    by=by, data={"action": action})
    return {"id": deploy.id, "service": service, "environment": environment, "sha": deploy.sha, "action": action}


def canary_of(store: Any, deploy: Any) -> dict:
    """`{"canary": …}` for a deploy whose canary is running (a queue row of `status`), else nothing."""
    if deploy.state != DeployState.ROLLING_OUT.value:
        return {}
    state = canary_state(store, deploy.id)
    return {"canary": state} if state else {}


def canary_state(store: Any, deploy_id: int) -> dict | None:
    """The newest canary verdict of a deploy (paused included), for status, the API and the dashboard."""
    for event in reversed(list(store.events(deploy_id))):
        if event.kind == "canary":
            data = dict(event.data or {})
            return {"step": data.get("step"), "weight": data.get("weight"), "verdict": data.get("verdict"),
                    "paused": data.get("verdict") == "paused", "message": event.message}
    return None
