"""Gate: the repo's own checks passed in a container of the built image."""

from __future__ import annotations

from bot.domain import GateResult
from checks.inputs import RepoCheckResult, short_duration

GATE = "repo-checks"
REASON_LINES = 15  # lines of output quoted in a reason; the full tail stays in the result


def repo_checks_gate(results: list[RepoCheckResult]) -> GateResult:
    """Block on the first check that failed or timed out, naming it, its exit code and the end
    of its output."""
    if not results:
        return GateResult.ok(GATE, "no repo checks configured")
    for result in results:
        if result.timed_out:
            limit = f" after {short_duration(result.timeout)}" if result.timeout else ""
            return GateResult.block(GATE, f"check {result.name} timed out{limit}" + _tail(result))
        if result.exit_code != 0:
            code = "did not start" if result.exit_code is None else f"exit code {result.exit_code}"
            return GateResult.block(GATE, f"check {result.name} failed ({code})" + _tail(result))
    return GateResult.ok(GATE, "passed: " + ", ".join(r.name for r in results))


def _tail(result: RepoCheckResult) -> str:
    lines = result.output_tail.rstrip("\n").splitlines()[-REASON_LINES:]
    if not lines:
        return "; it printed nothing"
    return "; last lines of output:\n" + "\n".join(lines)
