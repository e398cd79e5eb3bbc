"""Gate: a person with deploy rights approved what another gate asked them to look at."""

from __future__ import annotations

from bot.domain import GateResult
from checks.inputs import Approval

GATE = "approval"


def approval_gate(approval: Approval | None, deployers: list[str], asked_for: str = "this deploy",
                  gate: str = GATE) -> GateResult:
    """No approval asked yet or pending: wait, naming who may approve. Granted: pass.
    Rejected: block with who and why. `asked_for` says what needs approving."""
    if approval is None or approval.state == "pending":
        who = "one of " + ", ".join(deployers) if deployers else "a deployer"
        return GateResult.wait(gate, f"waiting for approval of {asked_for} from {who}")
    if approval.state == "granted":
        because = f": {approval.reason}" if approval.reason else ""
        return GateResult.ok(gate, f"{asked_for} approved by {approval.by}{because}")
    why = f": {approval.reason}" if approval.reason else " (no reason given)"
    return GateResult.block(gate, f"{asked_for} rejected by {approval.by}{why}")
