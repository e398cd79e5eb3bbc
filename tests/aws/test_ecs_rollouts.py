"""ECS rollout sequences moto hides, on the stateful fake of tests/fakes/ecs.py (checked against
botocore's service model): each deployment with its own id and task definition, the circuit
breaker's rollback, stopped tasks with their reasons, placement failures, replaced deployments,
and a worker that restarts mid-rollout."""

from __future__ import annotations

import boto3
import pytest
from aws_world import ECR_HOST, NEW_SHA, OLD_SHA, Events, plan

from bot.config import EcsSettings
from bot.errors import InfrastructureFailure, RolloutError
from bot.infra.targets.ecs.target import EcsTarget
from tests.fakes.ecs import FakeEcs

OLD_IMAGE = f"{ECR_HOST}/web:{OLD_SHA}"
NEW_IMAGE = f"{ECR_HOST}/web:{NEW_SHA}"


class Crash(Exception):
    """The worker dies."""


@pytest.fixture
def fake() -> FakeEcs:
    ecs = FakeEcs()
    ecs.create_service("web", ecs.register("web", OLD_IMAGE))
    return ecs


def target_on(fake: FakeEcs, timeout: float = 30.0, **settings) -> EcsTarget:
    values = {"cluster": "prod", "service": "web", "container": "web", **settings}
    target = EcsTarget(EcsSettings(**values), session=boto3.Session(region_name="us-east-1"), poll=0,
                       rollout_timeout=timeout)
    target.ecs = fake
    return target


def step_data(events: Events, step: str) -> dict:
    return next(data for _, data in events.items if data.get("step") == step)


def test_a_healthy_rollout_follows_its_own_deployment_to_completed(fake):
    events = Events()

    target_on(fake).roll_out(plan(NEW_SHA, NEW_IMAGE), events)

    started = step_data(events, "ecs_deployment_started")
    service = fake.services["web"]
    assert [d.id for d in service.deployments] == [started["deployment"]]
    assert service.deployments[0].state == "COMPLETED"
    assert fake.image_of(started["task_definition"]) == NEW_IMAGE


def test_a_crashing_release_is_its_own_fault_with_the_stopped_tasks_reasons(fake):
    fake.next_outcome = "crash"
    events = Events()

    with pytest.raises(RolloutError) as failed:
        target_on(fake).roll_out(plan(NEW_SHA, NEW_IMAGE), events)

    assert not isinstance(failed.value, InfrastructureFailure)
    assert "tasks failed to start" in str(failed.value)
    assert "Essential container in task exited" in str(failed.value) and "web exited 1" in str(failed.value)
    diagnosis = step_data(events, "ecs_diagnosis")
    assert diagnosis["kind"] == "" and len(diagnosis["stopped_tasks"]) == 3
    assert any("deployment failed: tasks failed to start" in e for e in diagnosis["service_events"])

    # The rollback follows the circuit breaker's own rollback deployment; nothing is registered.
    back = Events()
    target_on(fake).roll_out(plan(OLD_SHA, OLD_IMAGE), back)
    assert "ecs_task_definition_registered" not in back.steps and "ecs_already_current" in back.steps
    assert fake.image_of(fake.services["web"].task_definition) == OLD_IMAGE


@pytest.mark.parametrize(("outcome", "kind", "says"), [
    ("pull-error", "image-pull", "CannotPullContainerError"),
    ("secret", "secret", "unable to pull secrets"),
])
def test_an_image_or_secret_ecs_cannot_fetch_is_the_infrastructures_failure(fake, outcome, kind, says):
    fake.next_outcome = outcome
    events = Events()

    with pytest.raises(InfrastructureFailure) as failed:
        target_on(fake).roll_out(plan(NEW_SHA, NEW_IMAGE), events)

    assert failed.value.kind == kind and failed.value.restore
    assert says in str(failed.value)
    assert any(says in line for line in failed.value.details)
    # The circuit breaker put the old release back.
    assert fake.image_of(fake.services["web"].task_definition) == OLD_IMAGE


def test_tasks_that_cannot_be_placed_time_out_as_a_placement_failure_not_a_bad_release(fake):
    fake.next_outcome = "placement"

    with pytest.raises(InfrastructureFailure) as failed:
        target_on(fake, timeout=0).roll_out(plan(NEW_SHA, NEW_IMAGE), Events())

    assert failed.value.kind == "placement"
    assert "did not settle in 0s (0/2 running)" in str(failed.value)
    assert "unable to place a task" in str(failed.value)


def test_another_deploy_replacing_ours_is_not_judged_and_not_overwritten(fake):
    theirs = fake.register("web", f"{ECR_HOST}/web:hotfix")

    def their_deploy(ecs: FakeEcs) -> None:
        if len(fake.services["web"].deployments) == 2 and ecs.on_tick is not None:
            ecs.on_tick = None
            ecs.start_deployment("web", theirs, "healthy")

    fake.next_outcome = "stuck"
    fake.on_tick = their_deploy
    events = Events()

    with pytest.raises(InfrastructureFailure) as failed:
        target_on(fake).roll_out(plan(NEW_SHA, NEW_IMAGE), events)

    assert failed.value.kind == "replaced" and not failed.value.restore
    assert "was replaced by another deploy" in str(failed.value)
    assert fake.services["web"].task_definition == theirs
    assert [name for name, _ in fake.calls].count("update_service") == 1


def test_a_forced_redeploy_of_our_revision_is_followed_to_its_end_not_counted_done(fake):
    def forced(ecs: FakeEcs) -> None:
        ours = fake.services["web"].deployments[0]
        if ours.running == 1 and ecs.on_tick is not None:
            ecs.on_tick = None
            ecs.start_deployment("web", ours.task_definition, "stuck")  # at 0/2 and stays there

    fake.on_tick = forced
    events = Events()

    with pytest.raises(RolloutError, match=r"did not settle in 0\.5s \(0/2 running\)"):
        target_on(fake, timeout=0.5).roll_out(plan(NEW_SHA, NEW_IMAGE), events)

    assert "ecs_followed_replacement" in events.steps


def test_a_restarted_worker_resumes_the_same_deployment_instead_of_starting_another(fake):
    fake.next_outcome = "crash"

    def die_once_started(ecs: FakeEcs) -> None:
        if len(ecs.services["web"].deployments) == 2:
            ecs.on_tick = None
            raise Crash()

    fake.on_tick = die_once_started
    with pytest.raises(Crash):
        target_on(fake).roll_out(plan(NEW_SHA, NEW_IMAGE), Events())
    events = Events()

    with pytest.raises(RolloutError, match="tasks failed to start"):
        target_on(fake).roll_out(plan(NEW_SHA, NEW_IMAGE), events)  # a new worker, a new target

    assert "ecs_resumed" in events.steps
    calls = [name for name, _ in fake.calls]
    assert calls.count("update_service") == 1 and calls.count("register_task_definition") == 1
    assert not [t for t in fake.services["web"].tags if t["key"] == "mainline:rollout"], "the record is cleared"


TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-{}/6d0ecf831eec9f09"
RULE = ("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/"
        "f2f7dc8efc522ab2/9683b2d02a6cabee")


def blue_green_ready(fake: FakeEcs) -> None:
    fake.services["web"].load_balancers = [{
        "targetGroupArn": TG.format("blue"), "containerName": "web", "containerPort": 8080,
        "advancedConfiguration": {"alternateTargetGroupArn": TG.format("green"), "productionListenerRule": RULE,
                                  "roleArn": "arn:aws:iam::123456789012:role/ecs-blue-green"}}]


def test_blue_green_uses_ecs_native_strategy_with_a_bake_blue_kept_warm_by_ecs(fake):
    blue_green_ready(fake)
    events = Events()
    bg = plan(NEW_SHA, NEW_IMAGE)
    target_on(fake).roll_out(type(bg)(**{**bg.__dict__, "strategy": "blue-green"}), events)

    [update] = [params for name, params in fake.calls if name == "update_service"]
    config = update["deploymentConfiguration"]
    assert config["strategy"] == "BLUE_GREEN" and config["bakeTimeInMinutes"] == 1
    # Everything the team set is still there.
    assert config["maximumPercent"] == 200 and config["minimumHealthyPercent"] == 100
    assert "ecs_blue_green_as_rolling" not in events.steps


def test_blue_green_asked_of_a_service_without_a_second_target_group_is_refused_naming_it(fake):
    fake.services["web"].load_balancers = [{"targetGroupArn": TG.format("blue"), "containerName": "web",
                                            "containerPort": 8080}]

    with pytest.raises(InfrastructureFailure, match=r"cannot do BLUE_GREEN: it lacks a second \(alternate\) "
                                                    r"target group") as refused:
        target_on(fake, strategy="blue-green").roll_out(plan(NEW_SHA, NEW_IMAGE), Events())

    assert refused.value.kind == "configuration" and not refused.value.restore
    assert [name for name, _ in fake.calls].count("register_task_definition") == 0


def test_canary_uses_ecs_native_canary_strategy(fake):
    blue_green_ready(fake)

    target_on(fake, strategy="canary", canary_percent=20).roll_out(plan(NEW_SHA, NEW_IMAGE), Events())

    [update] = [params for name, params in fake.calls if name == "update_service"]
    config = update["deploymentConfiguration"]
    assert config["strategy"] == "CANARY"
    assert config["canaryConfiguration"] == {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 1}
