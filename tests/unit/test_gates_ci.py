"""CI contexts gate: required statuses and check runs, newest report per context wins."""

from datetime import UTC, datetime, timedelta

from bot.domain import GateStatus
from checks.ci_contexts import ci_contexts_gate
from checks.inputs import ContextState

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def status(context, state, minutes=0, description=""):
    return ContextState.from_status(context, state, T0 + timedelta(minutes=minutes), description)


def run(name, status_, conclusion, minutes=0):
    return ContextState.from_check_run(name, status_, conclusion, T0 + timedelta(minutes=minutes))


def gate(required, reports, now=T0 + timedelta(minutes=10), since=T0, timeout=HOUR):
    return ci_contexts_gate(required, reports, now, since, timeout)


def test_all_required_green_from_statuses_and_check_runs_passes():
    result = gate(["ci/build", "tests"], [status("ci/build", "success"), run("tests", "completed", "success")])
    assert result.status is GateStatus.PASS


def test_no_required_contexts_passes():
    assert gate([], []).status is GateStatus.PASS


def test_pending_context_waits_and_names_it():
    result = gate(["ci/build"], [status("ci/build", "pending")])
    assert result.status is GateStatus.WAIT
    assert "ci/build (pending)" in result.reason


def test_missing_context_waits_saying_it_has_not_reported():
    result = gate(["ci/build", "lint"], [status("ci/build", "success")])
    assert result.status is GateStatus.WAIT
    assert "lint (not reported yet)" in result.reason and "ci/build" not in result.reason


def test_check_run_in_progress_waits():
    assert gate(["tests"], [run("tests", "in_progress", None)]).status is GateStatus.WAIT


def test_failure_blocks_naming_the_context_and_its_description():
    result = gate(["ci/build", "lint"],
                  [status("ci/build", "failure", description="3 tests failed"), status("lint", "pending")])
    assert result.status is GateStatus.BLOCK
    assert "ci/build is failure: 3 tests failed" in result.reason


def test_error_status_blocks():
    assert gate(["ci/build"], [status("ci/build", "error")]).status is GateStatus.BLOCK


def test_failed_check_run_conclusion_blocks():
    result = gate(["tests"], [run("tests", "completed", "timed_out")])
    assert result.status is GateStatus.BLOCK and "tests is failure" in result.reason


def test_neutral_and_skipped_check_runs_count_as_green():
    result = gate(["a", "b"], [run("a", "completed", "neutral"), run("b", "completed", "skipped")])
    assert result.status is GateStatus.PASS


def test_newest_report_wins_a_rerun_that_went_green_passes():
    reports = [status("ci/build", "success", minutes=5), status("ci/build", "failure", minutes=1)]
    assert gate(["ci/build"], reports).status is GateStatus.PASS


def test_newest_report_wins_a_newer_failure_over_an_older_success():
    reports = [status("ci/build", "success", minutes=1), run("ci/build", "completed", "failure", minutes=3)]
    assert gate(["ci/build"], reports).status is GateStatus.BLOCK


def test_newest_report_wins_a_rerun_pending_again_waits():
    reports = [status("ci/build", "failure", minutes=1), status("ci/build", "pending", minutes=2)]
    assert gate(["ci/build"], reports).status is GateStatus.WAIT


def test_pending_past_the_timeout_blocks_saying_how_long():
    result = gate(["ci/build"], [status("ci/build", "pending")], now=T0 + timedelta(minutes=65))
    assert result.status is GateStatus.BLOCK
    assert "after 1h 5m (timeout 1h)" in result.reason and "ci/build (pending)" in result.reason


def test_never_reported_past_the_timeout_blocks():
    result = gate(["ci/build"], [], now=T0 + timedelta(hours=2))
    assert result.status is GateStatus.BLOCK and "not reported yet" in result.reason


def test_pending_just_inside_the_timeout_still_waits():
    result = gate(["ci/build"], [status("ci/build", "pending")], now=T0 + timedelta(minutes=59))
    assert result.status is GateStatus.WAIT
