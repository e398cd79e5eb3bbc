"""Approval gate: pending waits naming who may approve; granted passes; rejected blocks."""

from bot.domain import GateStatus
from checks.approval import approval_gate
from checks.inputs import Approval

DEPLOYERS = ["github:octocat", "slack:U2CERLKJA"]


def test_no_approval_yet_waits_naming_the_deployers():
    result = approval_gate(None, DEPLOYERS)
    assert result.status is GateStatus.WAIT
    assert result.reason == "waiting for approval of this deploy from one of github:octocat, slack:U2CERLKJA"


def test_pending_approval_waits():
    assert approval_gate(Approval("pending"), DEPLOYERS).status is GateStatus.WAIT


def test_granted_passes_naming_who():
    result = approval_gate(Approval("granted", by="github:octocat"), DEPLOYERS)
    assert result.status is GateStatus.PASS and "github:octocat" in result.reason


def test_rejected_blocks_with_who_and_why():
    result = approval_gate(Approval("rejected", by="slack:U2CERLKJA", reason="drop column during peak"), DEPLOYERS)
    assert result.status is GateStatus.BLOCK
    assert result.reason == "this deploy rejected by slack:U2CERLKJA: drop column during peak"
