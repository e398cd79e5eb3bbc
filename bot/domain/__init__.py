"""The domain: entities and value types (`model`) and the deploy state machine (`states`)."""

from bot.domain.model import (
    DeployRequest,
    GateResult,
    GateStatus,
    HealthPolicy,
    Lock,
    Replica,
    RolloutPlan,
    VerifyReport,
    in_sync,
    utcnow,
)
from bot.domain.states import IN_FLIGHT, TERMINAL_STATES, TRANSITIONS, DeployState, can_transition, mermaid

__all__ = [
    "IN_FLIGHT",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "DeployRequest",
    "DeployState",
    "GateResult",
    "GateStatus",
    "HealthPolicy",
    "Lock",
    "Replica",
    "RolloutPlan",
    "VerifyReport",
    "can_transition",
    "in_sync",
    "mermaid",
    "utcnow",
]
