"""Why the branch is ahead of production, when it is because the infrastructure stopped the
head's deploy (an image ECS could not pull, tasks it could not place): that release was not
judged, nothing was reverted, and deploying it again is the fix."""

from __future__ import annotations

from typing import Any

from bot.domain import DeployState

INFRASTRUCTURE = "infrastructure: "  # bot.engine.steps.INFRASTRUCTURE


def ahead_because(store: Any, service_id: int, environment: str, head: str | None, synced: bool) -> str | None:
    if synced or not head:
        return None
    failed = [d for d in store.deploys(service_id, environment, states=[DeployState.FAILED.value], limit=20)
              if d.sha == head]
    if not failed or not (failed[0].reason or "").startswith(INFRASTRUCTURE):
        return None
    why = failed[0].reason.removeprefix(INFRASTRUCTURE)
    return (f"master is ahead because of an infrastructure failure: {head[:12]} was not judged and nothing was "
            f"reverted ({why[:300]}); `mainline deploy` tries it again")
