"""A rollout the infrastructure stopped (bot.errors.InfrastructureFailure): the release is not
judged, production is put back as it was when it had changed, and nothing is reverted."""

from __future__ import annotations

from typing import Any

from bot.domain import DeployState
from bot.engine.transitions import Transition
from bot.errors import InfrastructureFailure

S = DeployState
INFRASTRUCTURE = "infrastructure: "  # bot.engine.steps.INFRASTRUCTURE


def infrastructure_failed(s: Any, exc: InfrastructureFailure) -> Transition:
    """`s` is the bot.engine.steps.Step at hand (not imported: steps imports this module)."""
    deploy = s.deploy
    reason = f"{INFRASTRUCTURE}{exc.kind}: {exc}"
    data = {"kind": exc.kind, "evidence": list(exc.details)[:10]}
    if exc.restore and deploy.previous_sha:
        return Transition(S.ROLLING_BACK, f"not the release's fault ({exc.kind}): {exc}; restoring "
                          f"{deploy.previous_sha[:12]}, and nothing will be reverted",
                          fields={"reason": reason}, data=data)
    if exc.restore:
        s.target().discard(s.plan(deploy.sha, deploy.image), s.sink)
    return Transition(S.FAILED, f"not the release's fault ({exc.kind}): {exc}; production is as it was and "
                      "nothing was reverted", fields={"reason": reason}, data=data)
