"""Blue-green on ECS task sets, against moto in server mode: a service on the EXTERNAL deployment
controller, each release its own task set, the switch by update_service_primary_task_set, the
previous set kept (scaled to 0%) for a rollback until `finish`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from aws_world import ECR_HOST, NEW_SHA, OLD_SHA, EcsWorld, Events, plan
from botocore.stub import Stubber
from ecs_responses import CLUSTER_ARN, SERVICE_ARN, SUBNETS, T0, TARGET_GROUP, described, registration_of, revision_arn
from ecs_responses import service as ecs_service
from ecs_responses import task_definition as stub_task_definition

from bot.canary.errors import CanaryFailedError
from bot.canary.policy import CanaryPolicy, CanaryStep
from bot.config import EcsSettings
from bot.infra.targets.ecs.target import EcsError, EcsTarget, TaskSetError

OLD_IMAGE = f"{ECR_HOST}/web:{OLD_SHA}"
NEW_IMAGE = f"{ECR_HOST}/web:{NEW_SHA}"


class BlueGreenWorld:
    """The team's blue-green service: `web-bg` on the EXTERNAL controller behind the world's
    target group, its first release in one task set at 100%, primary.

    EC2 launch type with bridge networking and a memory figure per container, because moto
    5.2.5 starts a task set's tasks through run_task, which fails for awsvpc tasks
    (NetworkInterface has no private_dns_name) and for containers without memory."""

    def __init__(self, world: EcsWorld, session):
        self.ecs = world.ecs
        ec2 = session.client("ec2")
        # One of the AMIs moto ships; describe_images to find one costs seconds per test.
        instance = ec2.run_instances(ImageId="ami-03cf127a", MinCount=1, MaxCount=1,
                                     InstanceType="m5.large")["Instances"][0]
        identity = json.dumps({"instanceId": instance["InstanceId"]})
        self.ecs.register_container_instance(cluster="prod", instanceIdentityDocument=identity)
        containers = world.definition(world.first_revision)["containerDefinitions"]
        self.first_revision = self.ecs.register_task_definition(
            family="web-bg", networkMode="bridge", requiresCompatibilities=["EC2"],
            containerDefinitions=[{**c, "memory": 256} for c in containers],
        )["taskDefinition"]["taskDefinitionArn"]
        load_balancers = [{"targetGroupArn": world.target_group, "containerName": "web", "containerPort": 8080}]
        self.ecs.create_service(cluster="prod", serviceName="web-bg", desiredCount=2, launchType="EC2",
                                deploymentController={"type": "EXTERNAL"}, loadBalancers=load_balancers)
        first = self.ecs.create_task_set(cluster="prod", service="web-bg", taskDefinition=self.first_revision,
                                         launchType="EC2", loadBalancers=load_balancers,
                                         scale={"value": 100.0, "unit": "PERCENT"})["taskSet"]
        self.ecs.update_service_primary_task_set(cluster="prod", service="web-bg", primaryTaskSet=first["taskSetArn"])
        self.first_set = first["id"]

    def task_sets(self) -> dict[str, dict]:
        sets = self.ecs.describe_task_sets(cluster="prod", service="web-bg")["taskSets"]
        return {t["id"]: t for t in sets}

    def primary(self) -> dict:
        return next(t for t in self.task_sets().values() if t["status"] == "PRIMARY")

    def revisions(self) -> list[str]:
        return self.ecs.list_task_definitions(familyPrefix="web-bg")["taskDefinitionArns"]

    def image(self, task_definition: str) -> str:
        definition = self.ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        return definition["containerDefinitions"][0]["image"]


@pytest.fixture
def blue_green(aws, ecs_world) -> BlueGreenWorld:
    return BlueGreenWorld(ecs_world, aws)


@pytest.fixture
def target(aws, blue_green) -> EcsTarget:
    settings = EcsSettings(cluster="prod", service="web-bg", container="web", alarms=["web-target-5xx"])
    return EcsTarget(settings, session=aws, poll=0.05, rollout_timeout=5.0)


def blue_green_plan(sha: str, image: str):
    return replace(plan(sha, image), strategy="blue-green")


def test_roll_out_puts_the_release_in_a_second_task_set_made_primary_and_keeps_the_first(blue_green, target):
    events = Events()

    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), events)

    sets = blue_green.task_sets()
    assert len(sets) == 2
    primary = blue_green.primary()
    assert primary["id"] != blue_green.first_set
    assert blue_green.image(primary["taskDefinition"]) == NEW_IMAGE
    assert primary["scale"] == {"value": 100.0, "unit": "PERCENT"}
    kept = sets[blue_green.first_set]
    assert kept["status"] == "ACTIVE" and kept["scale"]["value"] == 0.0
    assert kept["taskDefinition"] == blue_green.first_revision
    assert blue_green.revisions() == [blue_green.first_revision, primary["taskDefinition"]]
    assert target.service().task_definition == primary["taskDefinition"]
    assert [step for step in events.steps if step not in ("ecs_task_set_progress", "")] == [
        "ecs_task_definition_registered", "ecs_task_set_created", "ecs_task_set_primary", "ecs_task_set_kept"]

    report = target.verify(blue_green_plan(NEW_SHA, NEW_IMAGE), events)
    assert report.healthy, report.reason
    assert report.probes >= 2 and report.failed_probes == 0


def test_rollback_makes_the_kept_task_set_primary_again_without_registering_or_creating(blue_green, target):
    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), Events())
    new_set = blue_green.primary()["id"]
    revisions = blue_green.revisions()
    events = Events()

    target.roll_out(blue_green_plan(OLD_SHA, OLD_IMAGE), events)

    sets = blue_green.task_sets()
    assert set(sets) == {blue_green.first_set, new_set}, "rollback created a task set"
    assert blue_green.revisions() == revisions, "rollback registered a revision"
    assert blue_green.primary()["id"] == blue_green.first_set
    assert sets[blue_green.first_set]["scale"]["value"] == 100.0 and sets[new_set]["scale"]["value"] == 0.0
    assert "ecs_task_set_reused" in events.steps and "ecs_task_set_created" not in events.steps
    assert target.verify(blue_green_plan(OLD_SHA, OLD_IMAGE), events).healthy

    # The pipeline's rollback then discards the bad release and finishes the good one.
    target.discard(blue_green_plan(NEW_SHA, NEW_IMAGE), events)
    assert set(blue_green.task_sets()) == {blue_green.first_set}
    target.finish(blue_green_plan(OLD_SHA, OLD_IMAGE), events)
    assert set(blue_green.task_sets()) == {blue_green.first_set}


def test_finish_deletes_every_task_set_that_is_not_primary(blue_green, target):
    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), Events())
    primary = blue_green.primary()["id"]
    events = Events()

    target.finish(blue_green_plan(NEW_SHA, NEW_IMAGE), events)

    assert list(blue_green.task_sets()) == [primary]
    assert events.steps == ["ecs_task_set_deleted", "ecs_finished"]


def test_finish_refuses_when_the_primary_set_is_not_the_release(blue_green, target):
    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), Events())

    with pytest.raises(EcsError, match="primary task set does not run"):
        target.finish(blue_green_plan(OLD_SHA, OLD_IMAGE), Events())

    assert len(blue_green.task_sets()) == 2, "a kept task set was deleted around the wrong primary"


def test_rolling_out_the_same_image_twice_changes_nothing_the_second_time(blue_green, target):
    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), Events())
    before = {i: (t["status"], t["scale"], t["taskDefinition"]) for i, t in blue_green.task_sets().items()}
    revisions = blue_green.revisions()
    again = Events()

    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), again)

    assert {i: (t["status"], t["scale"], t["taskDefinition"]) for i, t in blue_green.task_sets().items()} == before
    assert blue_green.revisions() == revisions
    assert again.steps[0] == "ecs_already_current"
    assert not {"ecs_task_set_created", "ecs_task_set_primary", "ecs_task_set_kept"} & set(again.steps)


def test_a_blue_green_plan_on_the_ecs_controller_is_a_rolling_update(aws, ecs_world):
    target = EcsTarget(EcsSettings(cluster="prod", service="web", container="web"), session=aws, poll=0.05)
    events = Events()

    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), events)

    assert events.steps[0] == "ecs_blue_green_as_rolling"
    assert ecs_world.service()["taskDefinition"] == ecs_world.revisions()[-1]
    assert ecs_world.service()["taskSets"] == []


# -- what moto does not model: a task set that takes time to become steady, or never does --------
# Responses shaped after the Amazon ECS API Reference (DescribeServices, DescribeTaskSets,
# CreateTaskSet); botocore's Stubber checks each against the service model.

SET_V4, SET_V5 = "ecs-svc/1113785226385541235", "ecs-svc/7731968011839521471"
AWSVPC = {"awsvpcConfiguration": {"subnets": SUBNETS, "securityGroups": ["sg-0a1b2c3d4e5f60718"],
                                  "assignPublicIp": "DISABLED"}}
LOAD_BALANCERS = [{"targetGroupArn": TARGET_GROUP, "containerName": "web", "containerPort": 8080}]


def task_set(set_id: str, revision: int, status: str, stability: str, *, running: int, scale: float = 100.0) -> dict:
    desired = round(2 * scale / 100)
    return {
        "id": set_id, "taskSetArn": f"{SERVICE_ARN.replace(':service/', ':task-set/')}/{set_id}",
        "serviceArn": SERVICE_ARN, "clusterArn": CLUSTER_ARN, "status": status,
        "taskDefinition": revision_arn(revision), "computedDesiredCount": desired, "runningCount": running,
        "pendingCount": max(0, desired - running), "launchType": "FARGATE", "platformVersion": "1.4.0",
        "networkConfiguration": AWSVPC, "loadBalancers": LOAD_BALANCERS, "serviceRegistries": [],
        "scale": {"value": scale, "unit": "PERCENT"}, "stabilityStatus": stability,
        "stabilityStatusAt": T0, "createdAt": T0, "updatedAt": T0,
    }


def external_service(*sets: dict) -> dict:
    raw = ecs_service(4, [])
    raw.update(deploymentController={"type": "EXTERNAL"}, taskSets=list(sets), networkConfiguration=AWSVPC)
    for key in ("deploymentConfiguration", "deployments"):
        raw.pop(key)
    return raw


@pytest.fixture
def stubbed(aws):
    settings = EcsSettings(cluster="prod", service="web", container="web")
    target = EcsTarget(settings, session=aws, poll=0, rollout_timeout=5.0)
    with Stubber(target.ecs) as ecs:
        yield target, ecs
        ecs.assert_no_pending_responses()


def expect_new_task_set(ecs: Stubber, created: dict) -> None:
    """From describe_services to create_task_set: v4 serves, v5 is registered and its set made."""
    v4 = stub_task_definition(4, OLD_IMAGE)
    ecs.add_response("describe_services", described(external_service(task_set(SET_V4, 4, "PRIMARY", "STEADY_STATE",
                                                                               running=2))),
                     {"cluster": "prod", "services": ["web"]})
    ecs.add_response("describe_task_definition", {"taskDefinition": v4}, {"taskDefinition": revision_arn(4)})
    # The new revision is the current one with the image changed, tags kept.
    ecs.add_response("describe_task_definition", {"taskDefinition": v4, "tags": []},
                     {"taskDefinition": revision_arn(4), "include": ["TAGS"]})
    ecs.add_response("list_task_definitions", {"taskDefinitionArns": [revision_arn(4)]}, {
        "familyPrefix": "web", "status": "ACTIVE", "sort": "DESC", "maxResults": 50})
    ecs.add_response("describe_task_definition", {"taskDefinition": v4}, {"taskDefinition": revision_arn(4)})
    ecs.add_response("register_task_definition", {"taskDefinition": stub_task_definition(5, NEW_IMAGE)},
                     registration_of(v4, NEW_IMAGE))
    # The new set is placed like the primary one: Fargate, its subnets and security group, the target group.
    ecs.add_response("create_task_set", {"taskSet": created}, {
        "cluster": "prod", "service": "web", "taskDefinition": revision_arn(5),
        "scale": {"value": 100.0, "unit": "PERCENT"}, "loadBalancers": LOAD_BALANCERS,
        "networkConfiguration": AWSVPC, "launchType": "FARGATE", "platformVersion": "1.4.0"})


def test_a_task_set_is_followed_until_steady_before_it_is_made_primary(stubbed):
    target, ecs = stubbed
    old = task_set(SET_V4, 4, "PRIMARY", "STEADY_STATE", running=2)
    expect_new_task_set(ecs, task_set(SET_V5, 5, "ACTIVE", "STABILIZING", running=0))
    for running, stability in ((0, "STABILIZING"), (1, "STABILIZING"), (2, "STEADY_STATE")):
        ecs.add_response("describe_task_sets", {"taskSets": [old, task_set(SET_V5, 5, "ACTIVE", stability,
                                                                             running=running)]},
                         {"cluster": "prod", "service": "web"})
    ecs.add_response("update_service_primary_task_set",
                     {"taskSet": task_set(SET_V5, 5, "PRIMARY", "STEADY_STATE", running=2)},
                     {"cluster": "prod", "service": "web",
                      "primaryTaskSet": task_set(SET_V5, 5, "", "", running=0)["taskSetArn"]})
    ecs.add_response("update_task_set", {"taskSet": task_set(SET_V4, 4, "ACTIVE", "STABILIZING", running=2, scale=0.0)},
                     {"cluster": "prod", "service": "web", "taskSet": old["taskSetArn"],
                      "scale": {"value": 0.0, "unit": "PERCENT"}})
    events = Events()

    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), events)

    progress = [m for m, data in events.items if data.get("step") == "ecs_task_set_progress"]
    assert progress == [f"task set {SET_V5}: STABILIZING, 0/2 running", f"task set {SET_V5}: STABILIZING, 1/2 running",
                        f"task set {SET_V5}: STEADY_STATE, 2/2 running"]
    assert events.steps[-2:] == ["ecs_task_set_primary", "ecs_task_set_kept"]


def test_a_task_set_that_never_gets_steady_is_not_made_primary_and_is_discarded(stubbed):
    target, ecs = stubbed
    target.rollout_timeout = 0.0
    old = task_set(SET_V4, 4, "PRIMARY", "STEADY_STATE", running=2)
    stuck = task_set(SET_V5, 5, "ACTIVE", "STABILIZING", running=0)
    expect_new_task_set(ecs, stuck)
    ecs.add_response("describe_task_sets", {"taskSets": [old, stuck]}, {"cluster": "prod", "service": "web"})

    with pytest.raises(TaskSetError, match=f"task set {SET_V5} was not steady in 0s"):
        target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), Events())

    # The pipeline discards the failed release: its set goes, the primary one is untouched.
    ecs.add_response("describe_services", described(external_service(old, stuck)),
                     {"cluster": "prod", "services": ["web"]})
    ecs.add_response("describe_task_definition", {"taskDefinition": stub_task_definition(5, NEW_IMAGE)},
                     {"taskDefinition": revision_arn(5)})
    ecs.add_response("delete_task_set", {"taskSet": {**stuck, "status": "DRAINING"}},
                     {"cluster": "prod", "service": "web", "taskSet": stuck["taskSetArn"], "force": True})
    events = Events()
    target.discard(blue_green_plan(NEW_SHA, NEW_IMAGE), events)
    assert events.steps == ["ecs_task_set_deleted", "ecs_discarded"]


def test_two_target_groups_keep_blue_warm_behind_its_group_and_roll_back_with_one_switch(aws, ecs_world, blue_green):
    elbv2 = ecs_world.elbv2
    vpc = elbv2.describe_target_groups()["TargetGroups"][0]["VpcId"]
    green = elbv2.create_target_group(Name="web-green", Protocol="HTTP", Port=8080, VpcId=vpc,
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    balancer = elbv2.describe_load_balancers()["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elbv2.describe_listeners(LoadBalancerArn=balancer)["Listeners"][0]["ListenerArn"]
    settings = EcsSettings(cluster="prod", service="web-bg", container="web", listener_arn=listener,
                           alternate_target_group_arn=green)
    target = EcsTarget(settings, session=aws, poll=0.05, rollout_timeout=5.0)

    def forwards_to() -> str:
        return elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]["TargetGroupArn"]

    events = Events()
    target.roll_out(blue_green_plan(NEW_SHA, NEW_IMAGE), events)

    assert forwards_to() == green
    primary, blue = blue_green.primary(), blue_green.task_sets()[blue_green.first_set]
    assert primary["loadBalancers"][0]["targetGroupArn"] == green
    assert blue["loadBalancers"][0]["targetGroupArn"] == ecs_world.target_group
    assert blue["scale"]["value"] == 100.0, "blue is kept warm through the bake"
    assert events.steps.index("ecs_task_set_created") < events.steps.index("ecs_traffic_switched") \
        < events.steps.index("ecs_task_set_primary")
    assert "ecs_task_set_warm" in events.steps and "ecs_task_set_kept" not in events.steps

    back = Events()
    target.roll_out(blue_green_plan(OLD_SHA, OLD_IMAGE), back)

    assert forwards_to() == ecs_world.target_group
    assert blue_green.primary()["id"] == blue_green.first_set
    assert back.steps.count("ecs_traffic_switched") == 1 and "ecs_task_set_created" not in back.steps


def alb_metrics(ecs_world, group: str, requests: int, errors: int) -> None:
    balancer = ecs_world.elbv2.describe_load_balancers()["LoadBalancers"][0]["LoadBalancerArn"]
    dimensions = [{"Name": "TargetGroup", "Value": group[group.index("targetgroup/"):]},
                  {"Name": "LoadBalancer", "Value": balancer[balancer.index("app/"):]}]
    ecs_world.cloudwatch.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[
        {"MetricName": "RequestCount", "Dimensions": dimensions, "Value": requests, "Unit": "Count"},
        {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dimensions, "Value": errors, "Unit": "Count"}])


@pytest.mark.parametrize(("canary_errors", "passes"), [(1, True), (120, False)])
def test_a_canary_by_weighted_target_groups_is_judged_on_cloudwatch(aws, ecs_world, blue_green, canary_errors, passes):
    elbv2 = ecs_world.elbv2
    vpc = elbv2.describe_target_groups()["TargetGroups"][0]["VpcId"]
    green = elbv2.create_target_group(Name="web-green", Protocol="HTTP", Port=8080, VpcId=vpc,
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    balancer = elbv2.describe_load_balancers()["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elbv2.describe_listeners(LoadBalancerArn=balancer)["Listeners"][0]["ListenerArn"]
    target = EcsTarget(EcsSettings(cluster="prod", service="web-bg", container="web", listener_arn=listener,
                                   alternate_target_group_arn=green), session=aws, poll=0.05, rollout_timeout=5.0)
    alb_metrics(ecs_world, ecs_world.target_group, 1000, 2)
    alb_metrics(ecs_world, green, 1000, canary_errors)
    policy = CanaryPolicy(steps=(CanaryStep(10, 0.1),), interval=0.05, min_requests=100)
    canary = replace(plan(NEW_SHA, NEW_IMAGE), strategy="canary", canary=policy)
    events = Events()

    def forward() -> dict:
        return elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]

    if passes:
        target.roll_out(canary, events)
        assert forward()["TargetGroupArn"] == green
    else:
        with pytest.raises(CanaryFailedError, match=r"canary 5xx 12\.0% \(120/1000\) vs baseline 0\.2% \(2/1000\)"):
            target.roll_out(canary, events)
        weights = {g["TargetGroupArn"]: g["Weight"] for g in forward()["ForwardConfig"]["TargetGroups"]}
        assert weights == {ecs_world.target_group: 100, green: 0}
        assert blue_green.primary()["id"] == blue_green.first_set, "the canary never became primary"
    verdicts = [data for _, data in events.items if data.get("kind") == "canary" and data.get("metrics")]
    assert verdicts and verdicts[0]["weight"] == 10
