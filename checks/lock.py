"""Gate: a locked environment holds automatic deploys; a manual one goes past only when forced."""

from __future__ import annotations

from bot.domain import GateResult, Lock

GATE = "lock"


def lock_gate(lock: Lock | None, manual: bool, force: bool, reason: str | None) -> GateResult:
    """Pass when unlocked. Locked: automatic deploys wait; a manual deploy needs `force` and a
    reason (which the pipeline records in the event log), else it is blocked."""
    if lock is None:
        return GateResult.ok(GATE, "not locked")
    held = f"locked by {lock.by}: {lock.reason}" if lock.reason else f"locked by {lock.by}"
    if not manual:
        return GateResult.wait(GATE, f"{held}; deploys resume when it is unlocked")
    if not force:
        return GateResult.block(GATE, f"{held}; to deploy anyway, use --force with --reason")
    if not (reason and reason.strip()):
        return GateResult.block(GATE, f"{held}; --force needs a --reason saying why")
    return GateResult.ok(GATE, f"forced past the lock ({held}): {reason.strip()}")
