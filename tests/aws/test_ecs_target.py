"""The ECS target against moto in server mode: every call real HTTP through botocore."""

from __future__ import annotations

import pytest
from aws_world import ECR_HOST, NEW_SHA, OLD_SHA, Events, plan

from bot.config import EcsSettings
from bot.errors import InfrastructureFailure
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


def test_an_alarm_firing_after_the_rollout_fails_the_bake_and_the_rollback_bakes_past_it(aws, ecs_world):
    target = EcsTarget(settings(), session=aws, poll=0.05)
    target.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())
    ecs_world.set_alarm("ALARM", "Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (5.0).")

    report = target.verify(plan(NEW_SHA, NEW_IMAGE), Events())

    assert not report.healthy
    assert "web-target-5xx is in ALARM" in report.reason and "Threshold Crossed" in report.reason
    assert "did not clear" not in report.reason and report.probes == 1, "the alarm failed the bake at once"

    # Rolling back: the bad release's alarm was in ALARM before the rollback started, so it is
    # reported and not held against the release being restored.
    target.roll_out(plan(OLD_SHA, OLD_IMAGE), Events())
    events = Events()
    report = target.verify(plan(OLD_SHA, OLD_IMAGE), events)

    assert report.healthy, report.reason
    assert events.steps[:2] == ["ecs_bake_short", "ecs_alarm_before"]


def test_an_unrelated_alarm_already_in_alarm_before_the_deploy_is_reported_not_failing(aws, ecs_world):
    ecs_world.set_alarm("ALARM", "Threshold Crossed: an unrelated spike")
    target = EcsTarget(settings(), session=aws, poll=0.05)
    events = Events()

    target.roll_out(plan(NEW_SHA, NEW_IMAGE), events)
    # The bake may run in another worker: what was in ALARM before is kept on the service.
    report = EcsTarget(settings(), session=aws).verify(plan(NEW_SHA, NEW_IMAGE), events)

    assert report.healthy, report.reason
    assert events.steps.count("ecs_alarm_before") == 2  # at the rollout and in the bake
    # ECS's own deployment alarms watch it too, with rollback on.
    alarms = ecs_world.service()["deploymentConfiguration"]["alarms"]
    assert alarms == {"alarmNames": ["web-target-5xx"], "enable": True, "rollback": True}


def test_an_alarm_named_in_config_that_does_not_exist_is_refused_before_anything_changes(aws, ecs_world):
    target = EcsTarget(settings(alarms=["web-target-5xx", "web-latency"]), session=aws)

    with pytest.raises(InfrastructureFailure, match="web-latency does not exist") as refused:
        target.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())

    assert refused.value.kind == "configuration" and not refused.value.restore
    assert len(ecs_world.revisions()) == 1
    assert ecs_world.service()["taskDefinition"] == ecs_world.first_revision


def test_the_default_bake_lasts_the_alarms_evaluation_window(aws, ecs_world):
    target = EcsTarget(settings(), session=aws)
    events = Events()

    assert target._bake_seconds(30.0, events) == 60.0
    assert events.steps == ["ecs_bake_stretched"]


def test_rollback_registers_the_current_definition_with_the_previous_image(aws, ecs_world):
    target = EcsTarget(settings(), session=aws, poll=0.05)
    target.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())
    # Terraform raises the memory and tags the definition while the new release runs.
    current = ecs_world.definition(ecs_world.service()["taskDefinition"])
    bigger = {k: v for k, v in current.items() if k not in (
        "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt",
        "registeredBy")}
    bigger["memory"] = "1024"
    resized = ecs_world.ecs.register_task_definition(**bigger, tags=[{"key": "team", "value": "payments"}])
    ecs_world.ecs.update_service(cluster="prod", service="web",
                                 taskDefinition=resized["taskDefinition"]["taskDefinitionArn"])
    events = Events()

    target.roll_out(plan(OLD_SHA, OLD_IMAGE), events)

    arn = ecs_world.service()["taskDefinition"]
    assert arn not in (ecs_world.first_revision, resized["taskDefinition"]["taskDefinitionArn"])
    restored = ecs_world.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert restored["taskDefinition"]["memory"] == "1024"
    assert restored["taskDefinition"]["containerDefinitions"][0]["image"] == OLD_IMAGE
    assert restored["tags"] == [{"key": "team", "value": "payments"}]
    registered = next(data for _, data in events.items if data.get("step") == "ecs_task_definition_registered")
    assert registered["previous_task_definition"] == resized["taskDefinition"]["taskDefinitionArn"]


def test_deployment_settings_are_merged_and_the_breaker_added_with_a_warning(aws, ecs_world):
    ecs_world.ecs.update_service(cluster="prod", service="web", deploymentConfiguration={
        "minimumHealthyPercent": 50, "maximumPercent": 150})
    target = EcsTarget(settings(alarms=[]), session=aws, poll=0.05)
    events = Events()

    target.roll_out(plan(NEW_SHA, NEW_IMAGE), events)

    config = ecs_world.service()["deploymentConfiguration"]
    assert config["minimumHealthyPercent"] == 50 and config["maximumPercent"] == 150
    assert config["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    warned = [m for m, d in events.items if d.get("step") == "ecs_setting_added"]
    assert warned and "circuit breaker was off" in warned[0]

    # The next deploy finds the breaker on and changes no setting.
    again = Events()
    target.roll_out(plan("c" * 40, NEW_IMAGE.replace(NEW_SHA, "c" * 40)), again)
    assert "ecs_setting_added" not in again.steps


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
