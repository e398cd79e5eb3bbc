"""The engine's side of a canary: how a person's command reaches a running canary, and how a
canary that could not be judged ends (failed, nothing reverted)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.canary.errors import CanaryStuckError
from bot.domain import DeployState, RolloutPlan
from bot.engine.transitions import Transition
from bot.ports import DeployStore

COMMAND = "canary_command"  # the event kind a person's promote, pause or abort is recorded as
ACTIONS = ("promote", "pause", "abort")


def control(store: DeployStore, deploy_id: int) -> Callable[[], str | None]:
    """A callable answering the oldest command given since it was made, once each."""
    seen = {e.id for e in store.events(deploy_id) if e.kind == COMMAND}

    def next_command() -> str | None:
        for event in store.events(deploy_id):
            if event.kind == COMMAND and event.id not in seen:
                seen.add(event.id)
                action = (event.data or {}).get("action")
                if action in ACTIONS:
                    return str(action)
        return None

    return next_command


def with_control(plan: RolloutPlan, store: DeployStore, deploy_id: int) -> RolloutPlan:
    return replace(plan, control=control(store, deploy_id)) if plan.canary is not None else plan


def canary_stuck(exc: CanaryStuckError) -> Transition:
    return Transition(DeployState.FAILED, str(exc), fields={"reason": f"canary: {exc}"})
