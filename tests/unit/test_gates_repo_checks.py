"""Repo checks gate: a failed or timed-out check blocks, naming it, its exit code and output."""

from bot.domain import GateStatus
from checks.inputs import RepoCheckResult
from checks.repo_checks import repo_checks_gate


def test_no_checks_passes():
    assert repo_checks_gate([]).status is GateStatus.PASS


def test_all_passing_checks_pass():
    result = repo_checks_gate([RepoCheckResult("unit", 0), RepoCheckResult("lint", 0)])
    assert result.status is GateStatus.PASS and "unit, lint" in result.reason


def test_failed_check_blocks_with_name_exit_code_and_last_lines():
    output = "\n".join(f"line {i}" for i in range(1, 41)) + "\n"
    result = repo_checks_gate([RepoCheckResult("unit", 0), RepoCheckResult("lint", 2, output_tail=output)])
    assert result.status is GateStatus.BLOCK
    assert result.reason.startswith("check lint failed (exit code 2); last lines of output:\nline 26\n")
    assert result.reason.endswith("line 40")


def test_timed_out_check_blocks_saying_its_limit():
    result = repo_checks_gate([RepoCheckResult("e2e", None, timed_out=True, output_tail="waiting...", timeout=600)])
    assert result.status is GateStatus.BLOCK
    assert result.reason == "check e2e timed out after 10m; last lines of output:\nwaiting..."


def test_silent_failure_says_it_printed_nothing():
    result = repo_checks_gate([RepoCheckResult("unit", 1)])
    assert result.reason == "check unit failed (exit code 1); it printed nothing"
