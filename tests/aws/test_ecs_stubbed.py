"""ECS calls moto does not model, on botocore's Stubber with responses shaped like AWS's: a
target failing health checks during the bake, alarms during the bake, throttling. The rollout
sequences (circuit breaker, diagnosis, replaced deployments, timeouts) are on the stateful fake
in tests/fakes/ecs.py (tests/aws/test_ecs_rollouts.py)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from aws_world import ECR_HOST, NEW_SHA, OLD_SHA, Events, plan
from botocore.stub import ANY, Stubber
from ecs_responses import (
    TARGET_GROUP,
    deployment,
    described,
    fargate_task,
    revision_arn,
    service,
    target_health,
)

from bot.config import EcsSettings
from bot.infra.targets.ecs.target import EcsError, EcsTarget, ThrottledError

OLD_IMAGE = f"{ECR_HOST}/web:{OLD_SHA}"
NEW_IMAGE = f"{ECR_HOST}/web:{NEW_SHA}"
OLDER_IMAGE = f"{ECR_HOST}/web:{'9' * 40}"
SERVICE_KEY = {"cluster": "prod", "services": ["web"]}
D_OLD, D_NEW, D_BACK = "ecs-svc/3488129034526139183", "ecs-svc/9223370467433917623", "ecs-svc/5318841206711620384"
ALARM_OK = {
    "MetricAlarms": [{
        "AlarmName": "web-target-5xx",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-target-5xx",
        "StateValue": "OK",
        "StateReason": "Threshold Crossed: 1 datapoint [0.0 (02/03/26 14:05:00)] "
                       "was not greater than the threshold (5.0).",
        "MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB",
        "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 5.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "TargetGroup", "Value": "targetgroup/web/6d0ecf831eec9f09"}],
    }],
    "CompositeAlarms": [],
}
ALL_HEALTHY = target_health(("10.0.1.23", "healthy", "", ""), ("10.0.2.41", "healthy", "", ""))


def one_probe(p):
    """A plan whose bake is a single probe, so the stubbed calls are exactly known."""
    return replace(p, health=replace(p.health, bake=0.0))


@pytest.fixture
def target(aws):
    settings = EcsSettings(cluster="prod", service="web", container="web", alarms=["web-target-5xx"],
                           target_group_arn=TARGET_GROUP)
    return EcsTarget(settings, session=aws, poll=0)


def expect_healthy_probe(cloudwatch: Stubber, elbv2: Stubber) -> None:
    cloudwatch.add_response("describe_alarms", ALARM_OK, {"AlarmNames": ["web-target-5xx"], "AlarmTypes": ANY})
    elbv2.add_response("describe_target_health", ALL_HEALTHY, {"TargetGroupArn": TARGET_GROUP})


def test_target_failing_health_checks_fails_verify_then_rollback_verifies(aws, ecs_world):
    # ECS itself on moto; only the target health, which moto always reports healthy, is stubbed.
    target = EcsTarget(EcsSettings(cluster="prod", service="web", container="web", alarms=["web-target-5xx"]),
                       session=aws, poll=0.05)
    target.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())
    failing = target_health(
        ("10.0.1.23", "healthy", "", ""),
        ("10.0.2.41", "unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]"),
        ("10.0.1.77", "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"),
    )
    slow_bake = plan(NEW_SHA, NEW_IMAGE)
    slow_bake = replace(slow_bake, health=replace(slow_bake.health, bake=30.0, interval=0.01, failures=2))

    with Stubber(target.elbv2) as elb:
        elb.add_response("describe_target_health", failing, {"TargetGroupArn": ecs_world.target_group})
        elb.add_response("describe_target_health", failing, {"TargetGroupArn": ecs_world.target_group})

        report = target.verify(slow_bake, Events())

        assert not report.healthy
        assert report.probes == 2 and report.failed_probes == 2, "fails after `failures` bad probes, not the bake"
        assert "1 of 2 targets not healthy" in report.reason, "a draining target is leaving, not failing"
        assert "10.0.2.41:8080 is unhealthy" in report.reason and "[500]" in report.reason

        target.roll_out(plan(OLD_SHA, OLD_IMAGE), Events())
        elb.add_response("describe_target_health", ALL_HEALTHY, {"TargetGroupArn": ecs_world.target_group})

        assert target.verify(one_probe(plan(OLD_SHA, OLD_IMAGE)), Events()).healthy
        elb.assert_no_pending_responses()
    assert ecs_world.service()["taskDefinition"] == ecs_world.first_revision


def alarm_in(state: str, reason: str) -> dict:
    alarms = {**ALARM_OK, "MetricAlarms": [dict(ALARM_OK["MetricAlarms"][0], StateValue=state, StateReason=reason)]}
    return alarms


def test_an_alarm_going_into_alarm_during_the_bake_ends_it_at_once(target):
    fired = alarm_in("ALARM", "Threshold Crossed: 1 datapoint [57.0 (02/03/26 14:07:00)] was greater than the "
                              "threshold (5.0).")
    long_bake = plan(NEW_SHA, NEW_IMAGE)
    long_bake = replace(long_bake, health=replace(long_bake.health, bake=61.0, interval=0.01, failures=3))
    with Stubber(target.cloudwatch) as cw, Stubber(target.elbv2) as elb:
        cw.add_response("describe_alarms", ALARM_OK, {"AlarmNames": ["web-target-5xx"], "AlarmTypes": ANY})
        expect_healthy_probe(cw, elb)
        cw.add_response("describe_alarms", fired, {"AlarmNames": ["web-target-5xx"], "AlarmTypes": ANY})
        events = Events()

        report = target.verify(long_bake, events)

        cw.assert_no_pending_responses()
    assert not report.healthy and report.probes == 2, "an alarm firing mid-bake does not wait for the bake"
    assert report.reason.startswith("CloudWatch alarm web-target-5xx is in ALARM: Threshold Crossed")
    assert events.steps == ["ecs_probe_failed"]


def test_an_alarm_left_firing_by_the_bad_release_fails_the_rollback_only_if_it_never_clears(target):
    firing = alarm_in("ALARM", "Threshold Crossed: 1 datapoint [57.0 (02/03/26 14:07:00)] was greater than the "
                               "threshold (5.0).")
    short_bake = plan(OLD_SHA, OLD_IMAGE)
    short_bake = replace(short_bake, health=replace(short_bake.health, bake=0.05, interval=0.01, failures=1))
    with Stubber(target.cloudwatch) as cw, Stubber(target.elbv2) as elb:
        for _ in range(50):
            cw.add_response("describe_alarms", firing, {"AlarmNames": ["web-target-5xx"], "AlarmTypes": ANY})
            elb.add_response("describe_target_health", ALL_HEALTHY, {"TargetGroupArn": TARGET_GROUP})

        report = target.verify(short_bake, Events())

    assert not report.healthy and report.probes >= 2, "a lingering alarm waits for the bake to end"
    assert "already in ALARM when the bake started and did not clear in 0.05s" in report.reason


def test_throttling_and_5xx_are_retried_by_the_aws_policy(target, caplog):
    steady = service(4, [deployment(D_OLD, "PRIMARY", 4, "COMPLETED", running=2)])
    with Stubber(target.ecs) as ecs:
        ecs.add_client_error("describe_services", "ThrottlingException", "Rate exceeded", 400)
        ecs.add_client_error("describe_services", "ServerException", "Service Unavailable", 503)
        ecs.add_response("describe_services", described(steady), SERVICE_KEY)

        with caplog.at_level(logging.WARNING, logger="mainline.retry"):
            found = target.service()

        ecs.assert_no_pending_responses()
    assert found.task_definition == revision_arn(4) and found.primary.completed
    retries = [r.getMessage() for r in caplog.records if r.name == "mainline.retry"]
    assert len(retries) == 2 and "Rate exceeded" in retries[0]


def test_a_refusal_is_not_retried_and_is_named(target):
    with Stubber(target.ecs) as ecs:
        ecs.add_client_error("describe_services", "AccessDeniedException",
                             "User: arn:aws:sts::123456789012:assumed-role/deployer/mainline is not authorized "
                             "to perform: ecs:DescribeServices", 400)

        with pytest.raises(EcsError) as refused:
            target.service()

        ecs.assert_no_pending_responses()
    assert refused.value.code == "AccessDeniedException" and not isinstance(refused.value, ThrottledError)


def test_a_missing_service_is_named(target):
    with Stubber(target.ecs) as ecs:
        ecs.add_response("describe_services", {"services": [], "failures": [
            {"arn": "arn:aws:ecs:us-east-1:123456789012:service/prod/web", "reason": "MISSING"}]}, SERVICE_KEY)

        with pytest.raises(EcsError, match="ECS service web not found in cluster prod"):
            target.service()


def test_replicas_are_the_services_running_tasks(target):
    tasks = [fargate_task("0f4a6c1e9b2d4e7f8a1b3c5d7e9f0a2b", 4, OLD_IMAGE, "10.0.1.23", "HEALTHY"),
             fargate_task("7d2e9c4b1a3f4e6d8c0b2a4e6f8d0c2a", 4, OLD_IMAGE, "10.0.2.41", "UNKNOWN")]
    with Stubber(target.ecs) as ecs:
        ecs.add_response("list_tasks", {"taskArns": [t["taskArn"] for t in tasks]},
                         {"cluster": "prod", "serviceName": "web", "desiredStatus": "RUNNING"})
        ecs.add_response("describe_tasks", {"tasks": tasks, "failures": []},
                         {"cluster": "prod", "tasks": [t["taskArn"] for t in tasks]})
        ecs.add_response("describe_services",
                         described(service(4, [deployment(D_OLD, "PRIMARY", 4, "COMPLETED", running=2)])), SERVICE_KEY)

        replicas = target.replicas("web", "production")

    assert [(r.name, r.address, r.sha, r.healthy) for r in replicas] == [
        ("0f4a6c1e9b2d4e7f8a1b3c5d7e9f0a2b", "10.0.1.23:8080", OLD_SHA, True),
        ("7d2e9c4b1a3f4e6d8c0b2a4e6f8d0c2a", "10.0.2.41:8080", OLD_SHA, None),
    ]
    assert all(r.image == OLD_IMAGE for r in replicas)


def test_a_target_still_initial_after_a_scale_out_does_not_fail_the_bake(target):
    scaling = target_health(("10.0.1.23", "healthy", "", ""), ("10.0.2.41", "healthy", "", ""),
                            ("10.0.1.88", "initial", "Elb.RegistrationInProgress",
                             "Target registration is in progress"))
    bake = replace(plan(NEW_SHA, NEW_IMAGE), health=replace(plan(NEW_SHA, NEW_IMAGE).health, bake=0.0))
    with Stubber(target.cloudwatch) as cw, Stubber(target.elbv2) as elb:
        cw.add_response("describe_alarms", ALARM_OK, {"AlarmNames": ["web-target-5xx"], "AlarmTypes": ANY})
        cw.add_response("describe_alarms", ALARM_OK, {"AlarmNames": ["web-target-5xx"], "AlarmTypes": ANY})
        elb.add_response("describe_target_health", scaling, {"TargetGroupArn": TARGET_GROUP})

        report = target.verify(bake, Events())

    assert report.healthy, report.reason
