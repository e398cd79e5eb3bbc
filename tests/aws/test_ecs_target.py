"""The ECS target against moto in server mode: every call real HTTP through botocore."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aws_world import ECR_HOST, NEW_SHA, OLD_SHA, Events, plan

from bot.config import EcsSettings
from bot.infra.targets.ecs.target import EcsError, EcsTarget

OLD_IMAGE = f"{ECR_HOST}/web:{OLD_SHA}"
NEW_IMAGE = f"{ECR_HOST}/web:{NEW_SHA}"


def settings(**overrides) -> EcsSettings:
    values = {"cluster": "prod", "service": "web", "container": "web", "alarms": ["web-target-5xx"], **overrides}
    return EcsSettings(**values)


def without_identity(definition: dict) -> dict:
    return {k: v for k, v in definition.items() if k not in ("taskDefinitionArn", "revision", "registeredAt")}


def test_merge_deploys_a_new_revision_with_only_the_image_changed(aws, ecs_world):
    target = EcsTarget(settings(), session=aws, poll=0.05)
    events = Events()

    target.roll_out(plan(NEW_SHA, NEW_IMAGE), events)

    revisions = ecs_world.revisions()
    assert len(revisions) == 2
    service = ecs_world.service()
    assert service["taskDefinition"] == revisions[1]
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    old, new = ecs_world.definition(revisions[0]), ecs_world.definition(revisions[1])
    assert [c["image"] for c in new["containerDefinitions"]] == [NEW_IMAGE, old["containerDefinitions"][1]["image"]]
    old["containerDefinitions"][0]["image"] = NEW_IMAGE
    assert without_identity(new) == without_identity(old)
    assert "ecs_task_definition_registered" in events.steps and "ecs_progress" in events.steps

    report = target.verify(plan(NEW_SHA, NEW_IMAGE), events)
    assert report.healthy, report.reason
    assert report.probes >= 2 and report.failed_probes == 0
    target.finish(plan(NEW_SHA, NEW_IMAGE), events)


def test_rolling_out_twice_changes_nothing_the_second_time(aws, ecs_world):
    target = EcsTarget(settings(), session=aws, poll=0.05)
    target.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())
    again = Events()

    target.roll_out(plan(NEW_SHA, NEW_IMAGE), again)

    assert len(ecs_world.revisions()) == 2
    assert again.steps[0] == "ecs_already_current"


def test_rollback_reuses_the_previous_revision(aws, ecs_world):
    target = EcsTarget(settings(), session=aws, poll=0.05)
    target.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())
    events = Events()

    target.roll_out(plan(OLD_SHA, OLD_IMAGE), events)

    assert ecs_world.service()["taskDefinition"] == ecs_world.first_revision
    assert len(ecs_world.revisions()) == 2, "rollback registered a revision instead of re-using one"
    assert "ecs_task_definition_reused" in events.steps
    assert target.verify(plan(OLD_SHA, OLD_IMAGE), events).healthy


def test_alarm_still_firing_after_the_bake_fails_verify_and_one_that_clears_lets_rollback_verify(aws, ecs_world):
    target = EcsTarget(settings(), session=aws, poll=0.05)
    target.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())
    ecs_world.set_alarm("ALARM", "Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (5.0).")

    report = target.verify(plan(NEW_SHA, NEW_IMAGE), Events())

    assert not report.healthy
    assert "web-target-5xx" in report.reason and "Threshold Crossed" in report.reason
    assert "did not clear in 0.3s" in report.reason

    # Rolling back: the bad release's alarm is still in ALARM as the bake starts, and clears
    # once the 5xx stop; the rollback verifies instead of failing on the old alarm.
    target.roll_out(plan(OLD_SHA, OLD_IMAGE), Events())
    events = Events()

    def clear_when_seen(message: str, **data) -> None:
        events(message, **data)
        if data.get("step") == "ecs_alarm_lingering":
            ecs_world.set_alarm("OK", "Threshold Crossed: 1 datapoint [0.0] was not greater than the threshold (5.0).")

    rollback = plan(OLD_SHA, OLD_IMAGE)
    report = target.verify(replace(rollback, health=replace(rollback.health, bake=2.0)), clear_when_seen)

    assert report.healthy, report.reason
    assert events.steps == ["ecs_alarm_lingering", "ecs_baked"]
    assert ecs_world.service()["taskDefinition"] == ecs_world.first_revision


def test_an_alarm_named_in_config_that_does_not_exist_fails_verify(aws, ecs_world):
    target = EcsTarget(settings(alarms=["web-target-5xx", "web-latency"]), session=aws)

    report = target.verify(plan(OLD_SHA, OLD_IMAGE), Events())

    assert not report.healthy and "web-latency does not exist" in report.reason


def test_configured_target_group_wins_over_the_services_own(aws, ecs_world):
    empty = ecs_world.elbv2.create_target_group(
        Name="empty", Protocol="HTTP", Port=8080, TargetType="ip",
        VpcId=ecs_world.elbv2.describe_target_groups()["TargetGroups"][0]["VpcId"],
    )["TargetGroups"][0]["TargetGroupArn"]
    target = EcsTarget(settings(target_group_arn=empty), session=aws)

    report = target.verify(plan(OLD_SHA, OLD_IMAGE), Events())

    assert not report.healthy and "no targets registered in targetgroup/empty/" in report.reason


def test_replicas_lists_running_tasks(aws, ecs_world):
    # moto starts no tasks for a service, so there are none to list; the call shapes are real.
    assert EcsTarget(settings(), session=aws).replicas("web", "production") == []


def test_a_service_on_the_code_deploy_controller_is_refused_by_name(aws, ecs_world):
    ecs_world.ecs.create_service(cluster="prod", serviceName="web-bg", taskDefinition=ecs_world.first_revision,
                                 desiredCount=2, deploymentController={"type": "CODE_DEPLOY"})
    target = EcsTarget(settings(service="web-bg"), session=aws)

    with pytest.raises(EcsError, match="uses the CODE_DEPLOY deployment controller"):
        target.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())

    assert len(ecs_world.revisions()) == 1, "nothing was registered for a service we cannot roll out"
