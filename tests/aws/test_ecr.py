"""ECR: login and image lookups against moto; pushes are real, with the Docker SDK, to the local
registry at 127.0.0.1:5000 standing in for ECR's proxy endpoint (moto's ECR runs no registry)."""

from __future__ import annotations

import json

import pytest
import requests
from aws_world import ACCOUNT, NEW_SHA, Events, plan

from bot.config import EcsSettings
from bot.errors import BuildError
from bot.infra.aws.ecr import EcrError, EcrRegistry
from bot.infra.targets.ecs.target import EcsTarget

STAND_IN = "127.0.0.1:5000"
MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def registry_has(repository: str, tag: str) -> bool:
    resp = requests.head(f"http://{STAND_IN}/v2/{repository}/manifests/{tag}",
                         headers={"Accept": MANIFEST_TYPES}, timeout=10)
    return resp.status_code == 200


@pytest.fixture
def pushed_tags(docker_client):
    tags: list[str] = []
    yield tags
    for tag in tags:
        docker_client.images.remove(tag, force=True)


def test_login_decodes_the_token_and_names_the_proxy_endpoint(aws):
    login = EcrRegistry(aws).login()

    assert login.registry == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
    assert login.username == "AWS" and login.password
    assert login.auth_config == {"username": "AWS", "password": login.password}


def test_image_exists_asks_ecr(aws):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="web")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                           "digest": "sha256:" + "b5" * 32},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                            "digest": "sha256:" + "e6" * 32}]}
    ecr.put_image(repositoryName="web", imageManifest=json.dumps(manifest), imageTag=NEW_SHA)
    registry = EcrRegistry(aws)

    assert registry.image_exists("web", NEW_SHA)
    assert not registry.image_exists("web", "0" * 40)
    with pytest.raises(EcrError, match="RepositoryNotFoundException"):
        registry.image_exists("nope", NEW_SHA)


def test_push_sends_the_local_image_with_ecr_credentials(aws, docker_client, local_image, pushed_tags):
    registry = EcrRegistry(aws, docker_client=docker_client, registry=STAND_IN)

    ref = registry.push(local_image, "mainline-aws-test/web", NEW_SHA)
    pushed_tags.append(ref)

    assert ref == f"{STAND_IN}/mainline-aws-test/web:{NEW_SHA}"
    assert registry_has("mainline-aws-test/web", NEW_SHA)


def test_push_to_an_unreachable_registry_is_a_build_error(aws, docker_client, local_image, pushed_tags):
    registry = EcrRegistry(aws, docker_client=docker_client, registry="127.0.0.1:9")
    pushed_tags.append(f"127.0.0.1:9/web:{NEW_SHA}")

    with pytest.raises(BuildError, match=r"127\.0\.0\.1:9/web"):
        registry.push(local_image, "web", NEW_SHA)


def test_ecs_target_pushes_then_runs_the_pushed_reference(aws, ecs_world, docker_client, local_image, pushed_tags):
    settings = EcsSettings(cluster="prod", service="web", container="web", repository="mainline-aws-test/web")
    builder = EcrRegistry(aws, docker_client=docker_client, registry=STAND_IN)
    target = EcsTarget(settings, session=aws, builder=builder, poll=0.05)
    expected = f"{STAND_IN}/mainline-aws-test/web:{NEW_SHA}"
    pushed_tags.append(expected)
    events = Events()

    target.roll_out(plan(NEW_SHA, local_image), events)

    running = ecs_world.definition(ecs_world.service()["taskDefinition"])
    assert running["containerDefinitions"][0]["image"] == expected
    assert registry_has("mainline-aws-test/web", NEW_SHA)
    assert events.steps[0] == "ecr_pushed"
