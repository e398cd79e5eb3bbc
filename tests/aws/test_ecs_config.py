"""The `ecs:` block's reach: several services rolled out and rolled back together, a role
assumed with its external id, a timeout of one's own, and a target rebuilt when the block changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
from aws_world import ECR_HOST, NEW_SHA, OLD_SHA, Events, plan
from botocore.stub import Stubber

from bot.config import EcsSettings, parse_config
from bot.errors import RolloutError
from bot.infra.aws.session import assumed_session
from bot.infra.targets.ecs.group import EcsGroup, ecs_target
from bot.wiring import Targets
from tests.fakes.ecs import FakeEcs

OLD_IMAGE = f"{ECR_HOST}/web:{OLD_SHA}"
NEW_IMAGE = f"{ECR_HOST}/web:{NEW_SHA}"
ROLE = "arn:aws:iam::123456789012:role/mainline-deployer"


def group_on(fake: FakeEcs) -> EcsGroup:
    settings = EcsSettings(cluster="prod", services=[{"service": "web", "container": "web"},
                                                     {"service": "worker", "container": "web"}], timeout="10s")
    group = ecs_target(settings, session=boto3.Session(region_name="us-east-1"), poll=0)
    assert isinstance(group, EcsGroup)
    for target in group.targets:
        target.ecs = fake
        assert target.rollout_timeout == 10.0
    return group


def test_a_web_service_and_its_worker_ship_together_and_roll_back_together():
    fake = FakeEcs()
    fake.create_service("web", fake.register("web", OLD_IMAGE))
    fake.create_service("worker", fake.register("worker", OLD_IMAGE))
    group = group_on(fake)
    events = Events()

    group.roll_out(plan(NEW_SHA, NEW_IMAGE), events)

    assert {fake.image_of(s.task_definition) for s in fake.services.values()} == {NEW_IMAGE}
    assert any(m.startswith("[worker] ECS deployment") for m in events.messages)

    # The next release breaks the worker: the web service already runs it, and the rollback
    # brings both back.
    fake.next_outcome = "healthy"
    third = f"{ECR_HOST}/web:{'c' * 40}"

    def worker_crashes(ecs: FakeEcs) -> None:
        worker = ecs.services["worker"].deployments[0]
        if worker.state == "IN_PROGRESS" and ecs.image_of(worker.task_definition) == third:
            worker.outcome = "crash"

    fake.on_tick = worker_crashes
    with pytest.raises(RolloutError, match="tasks failed to start"):
        group.roll_out(plan("c" * 40, third), Events())
    assert fake.image_of(fake.services["web"].task_definition) == third
    fake.on_tick = None

    group.roll_out(plan(NEW_SHA, NEW_IMAGE), Events())
    assert {fake.image_of(s.task_definition) for s in fake.services.values()} == {NEW_IMAGE}
    assert group.verify(plan(NEW_SHA, NEW_IMAGE), Events()).healthy


def test_the_role_is_assumed_with_its_external_id():
    sts = boto3.Session(region_name="us-east-1").client("sts")
    expires = datetime.now(UTC) + timedelta(hours=1)
    with Stubber(sts) as stub:
        stub.add_response("assume_role", {
            "Credentials": {"AccessKeyId": "ASIAEXAMPLEEXAMPLE01", "SecretAccessKey": "s" * 40,
                            "SessionToken": "t" * 64, "Expiration": expires},
            "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE:mainline", "Arn": f"{ROLE}/mainline"},
        }, {"RoleArn": ROLE, "RoleSessionName": "mainline", "DurationSeconds": 3600, "ExternalId": "acme-7f3a"})

        session = assumed_session("us-east-1", ROLE, "acme-7f3a", sts=sts)

        stub.assert_no_pending_responses()
    credentials = session.get_credentials().get_frozen_credentials()
    assert credentials.access_key == "ASIAEXAMPLEEXAMPLE01" and credentials.token == "t" * 64


def config(alarms: str) -> object:
    return parse_config(f"""\
service: web
environments:
  production:
    target: ecs
    ecs: {{cluster: prod, service: web, container: web, alarms: [{alarms}]}}
""")


def test_the_target_is_rebuilt_when_the_ecs_block_changes():
    targets = Targets(SimpleNamespace())
    first = targets("web", "production", config("web-5xx"))

    assert targets("web", "production", config("web-5xx")) is first
    changed = targets("web", "production", config("web-5xx, web-latency"))
    assert changed is not first and changed.settings.alarms == ["web-5xx", "web-latency"]
