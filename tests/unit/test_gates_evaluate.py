"""evaluate(): every gate in a fixed order; first_blocker(): what "why isn't this deploying?" shows."""

from datetime import UTC, datetime, timedelta

from bot.config import parse_config
from bot.domain import GateStatus, Lock
from checks.evaluate import ORDER, PRE_BUILD, evaluate, first_blocker
from checks.inputs import (
    Approval,
    CiInput,
    ContextState,
    DependencyState,
    GateInputs,
    LockInput,
    MigrationFinding,
    RepoCheckResult,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in Toronto
CONFIG = parse_config(
    """
service: web
environments:
  production:
    auto_deploy: true
    deployers: ["github:octocat"]
    window: {timezone: America/Toronto, days: mon-fri, hours: "09:00-17:00"}
checks:
  - {name: unit, run: "true"}
required_contexts: [ci/build]
migrations: {policy: allow-expand}
depends_on: [api]
"""
)
GREEN = CiInput(statuses=[ContextState.from_status("ci/build", "success", NOW - timedelta(minutes=5))],
                pending_since=NOW)


def inputs(**changes) -> GateInputs:
    base = dict(
        environment="production",
        now=NOW,
        config=CONFIG,
        ci=GREEN,
        dependencies=[DependencyState("api", True)],
        repo_checks=[RepoCheckResult("unit", 0)],
    )
    base.update(changes)
    return GateInputs(**base)


def test_everything_green_passes_every_gate_in_order():
    results = evaluate(inputs())
    assert [r.gate for r in results] == list(ORDER)
    assert all(r.passed for r in results)
    assert first_blocker(results) is None


def test_pre_build_stage_leaves_out_repo_checks():
    results = evaluate(inputs(repo_checks=None), stage="pre-build")
    assert [r.gate for r in results] == list(PRE_BUILD)
    assert all(r.passed for r in results)


def test_post_build_stage_runs_only_repo_checks():
    failing = RepoCheckResult("unit", 1, output_tail="1 failed")
    results = evaluate(inputs(repo_checks=[failing]), stage="post-build")
    assert [(r.gate, r.status) for r in results] == [("repo-checks", GateStatus.BLOCK)]


def test_repo_checks_not_run_yet_wait_for_the_build():
    blocker = first_blocker(evaluate(inputs(repo_checks=None)))
    assert blocker.gate == "repo-checks" and blocker.status is GateStatus.WAIT


def test_first_blocker_is_the_earliest_gate_that_did_not_pass():
    lock = LockInput(Lock("web", "production", by="alice", reason="incident 42"))
    results = evaluate(inputs(lock=lock, now=datetime(2026, 3, 7, 15, 0, tzinfo=UTC)))  # Saturday
    blocker = first_blocker(results)
    assert blocker.gate == "lock" and blocker.reason.startswith("locked by alice: incident 42")
    assert [r.gate for r in results if not r.passed] == ["lock", "window"]


def test_contract_migration_holds_the_deploy_until_approved():
    contract = [MigrationFinding("db/migrate/2_drop.rb", "contract", ["contract: removes column users.email"])]
    held = first_blocker(evaluate(inputs(migrations=contract)))
    assert held.gate == "migrations" and held.status is GateStatus.WAIT and "github:octocat" in held.reason
    approved = evaluate(inputs(migrations=contract, approval=Approval("granted", by="github:octocat")))
    assert first_blocker(approved) is None


def test_required_contexts_come_from_the_config():
    blocker = first_blocker(evaluate(inputs(ci=CiInput(pending_since=NOW))))
    assert blocker.gate == "ci" and "ci/build (not reported yet)" in blocker.reason


def test_unmet_dependency_waits_naming_it():
    blocker = first_blocker(evaluate(inputs(dependencies=[DependencyState("api", False, "api is building")])))
    assert blocker.gate == "depends-on" and "api (api is building)" in blocker.reason


def test_invalid_config_blocks_with_its_line_and_runs_nothing_else():
    problem = ".github/deploy.yml: line 4: environments.production.replicas: Input should be less than or equal to 50"
    results = evaluate(inputs(config=None, config_problems=[problem]))
    assert len(results) == 1
    assert results[0].status is GateStatus.BLOCK and "line 4" in results[0].reason


def test_unknown_environment_blocks_naming_the_ones_the_config_has():
    blocker = first_blocker(evaluate(inputs(environment="staging")))
    assert blocker.gate == "config" and "'staging'" in blocker.reason and "production" in blocker.reason
