"""ECR through its token: the registry login is ECR's `get_authorization_token` (moto), the push
goes to a private TLS registry standing in for ECR's proxy endpoint, and a missing repository is
created first."""

from __future__ import annotations

import contextlib
import uuid

import docker
import pytest
from aws_world import ACCOUNT, NEW_SHA

from bot.infra.aws.ecr import EcrRegistry
from bot.infra.targets.docker.build import DockerBuilder
from bot.infra.targets.docker.registry import registry_access
from tests.registry_world import private_registry

# moto's ECR token is "AWS:<account>-auth-token": the stand-in registry accepts exactly that login.
ECR_PASSWORD = f"{ACCOUNT}-auth-token"


@pytest.fixture
def ecr_like_registry(tmp_path):
    with private_registry(tmp_path, username="AWS", password=ECR_PASSWORD) as reg:
        yield reg


def test_the_builder_logs_in_with_ecrs_token_and_ecr_gets_the_repository(aws, docker_client, local_image,
                                                                          ecr_like_registry, caplog):
    host = ecr_like_registry.host
    repository = f"mltest-ecr-{uuid.uuid4().hex[:8]}"
    builder = DockerBuilder(host, client=docker_client, access=registry_access(mode="ecr"))
    ecr = EcrRegistry(aws, docker_client=docker_client, registry=host)

    try:
        ref = ecr.push(local_image, repository, NEW_SHA)

        assert ref == f"{host}/{repository}:{NEW_SHA}"
        assert builder.image_exists(ref)  # looked up with ECR's token, over TLS
        names = [r["repositoryName"] for r in aws.client("ecr").describe_repositories()["repositories"]]
        assert repository in names  # created because it was missing
        assert not ecr.ensure_repository(repository)  # and only once
        assert ECR_PASSWORD not in caplog.text
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(f"{host}/{repository}:{NEW_SHA}", force=True)


def test_the_docker_builder_creates_the_ecr_repository_it_pushes_to(aws, docker_client, ecr_like_registry, tmp_path):
    host = ecr_like_registry.host
    repository = f"mltest-ecr-{uuid.uuid4().hex[:8]}"
    (tmp_path / "hello.txt").write_text(f"{repository}\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    builder = DockerBuilder(host, client=docker_client, access=registry_access(mode="ecr"))
    image = f"{host}/{repository}:{NEW_SHA}"

    try:
        builder.ensure_image(tmp_path, image, lambda *a, **k: None)

        assert builder.image_exists(image)
        names = [r["repositoryName"] for r in aws.client("ecr").describe_repositories()["repositories"]]
        assert repository in names  # ECR refuses a push to a repository that does not exist
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(image, force=True)
