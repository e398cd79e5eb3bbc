"""Lock gate: automatic deploys wait; a manual one goes past only with force and a reason."""

from bot.domain import GateStatus, Lock
from checks.lock import lock_gate

LOCK = Lock("web", "production", by="alice", reason="incident 42")


def test_unlocked_passes():
    assert lock_gate(None, manual=False, force=False, reason=None).status is GateStatus.PASS


def test_locked_automatic_deploy_waits_naming_who_and_why():
    result = lock_gate(LOCK, manual=False, force=False, reason=None)
    assert result.status is GateStatus.WAIT
    assert result.reason.startswith("locked by alice: incident 42")


def test_automatic_deploy_cannot_force_past_a_lock():
    assert lock_gate(LOCK, manual=False, force=True, reason="hurry").status is GateStatus.WAIT


def test_manual_deploy_without_force_is_blocked_and_told_how():
    result = lock_gate(LOCK, manual=True, force=False, reason=None)
    assert result.status is GateStatus.BLOCK
    assert "locked by alice: incident 42" in result.reason and "--force" in result.reason


def test_manual_force_without_a_reason_is_blocked():
    for reason in (None, "", "   "):
        result = lock_gate(LOCK, manual=True, force=True, reason=reason)
        assert result.status is GateStatus.BLOCK and "needs a --reason" in result.reason


def test_manual_force_with_a_reason_passes_and_says_so():
    result = lock_gate(LOCK, manual=True, force=True, reason="hotfix for incident 42")
    assert result.status is GateStatus.PASS
    assert "forced past the lock" in result.reason and "hotfix for incident 42" in result.reason
