"""Gate: every required CI context is green on the sha."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain import GateResult
from checks.inputs import ContextState, short_duration

GATE = "ci"


def newest_states(statuses: list[ContextState]) -> dict[str, ContextState]:
    """The newest report per context, commit statuses and check runs together.

    A re-run that went green replaces the failure before it; on equal times the later report in
    the list wins, so callers pass reports in the order GitHub produced them."""
    newest: dict[str, ContextState] = {}
    for report in statuses:
        seen = newest.get(report.context)
        if seen is None or report.updated_at >= seen.updated_at:
            newest[report.context] = report
    return newest


def ci_contexts_gate(
    required: list[str],
    statuses: list[ContextState],
    now: datetime,
    pending_since: datetime | None,
    timeout: timedelta,
) -> GateResult:
    """Pass when every required context is green; wait while any is pending or missing;
    block on a failure, or when CI has kept the sha waiting longer than `timeout`."""
    if not required:
        return GateResult.ok(GATE, "no required CI contexts")
    newest = newest_states(statuses)
    failed = [newest[c] for c in required if c in newest and newest[c].state in ("failure", "error")]
    if failed:
        return GateResult.block(GATE, "; ".join(_failure(r) for r in failed))
    missing = [c for c in required if c not in newest]
    pending = [c for c in required if c in newest and newest[c].state == "pending"]
    if not missing and not pending:
        return GateResult.ok(GATE, "green: " + ", ".join(required))
    waiting = ", ".join([f"{c} (pending)" for c in pending] + [f"{c} (not reported yet)" for c in missing])
    if pending_since is not None:
        waited = (now - pending_since).total_seconds()
        if waited > timeout.total_seconds():
            return GateResult.block(
                GATE,
                f"CI still not green after {short_duration(waited)} "
                f"(timeout {short_duration(timeout.total_seconds())}): "
                f"{waiting}; re-run CI or fix it, then deploy again",
            )
    return GateResult.wait(GATE, f"waiting for CI: {waiting}")


def _failure(report: ContextState) -> str:
    text = f"{report.context} is {report.state}"
    if report.description:
        text += f": {report.description}"
    if report.url:
        text += f" ({report.url})"
    return text
