"""A private registry over TLS with a login: refused without credentials (and told how to log in),
served with a username and token or with `docker login`'s config, and the secret never shows."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import uuid

import docker
import pytest

from bot.errors import BuildError
from bot.infra.targets.docker.build import DockerBuilder
from bot.infra.targets.docker.registry import RegistryAccess, RegistryAuthError, registry_access
from tests.registry_world import private_registry

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with private_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def context(tmp_path):
    (tmp_path / "hello.txt").write_text(f"hello {uuid.uuid4().hex}\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    return tmp_path


@pytest.fixture
def image(registry, docker_client):
    ref = f"{registry.host}/mltest-auth-{uuid.uuid4().hex[:8]}:{uuid.uuid4().hex}"
    yield ref
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(ref, force=True)


def test_a_push_without_credentials_is_refused_with_the_fix(registry, docker_client, context, image):
    builder = DockerBuilder(registry.host, client=docker_client, access=RegistryAccess(lambda host: None))
    events: list[str] = []

    with pytest.raises(RegistryAuthError, match="docker login") as refused:
        builder.ensure_image(context, image, lambda message, **data: events.append(message))

    assert registry.host in str(refused.value) and "MAINLINE_REGISTRY_USERNAME" in str(refused.value)
    # The registry itself refuses an anonymous push, not only our lookup.
    docker_client.images.build(path=str(context), tag=image)
    repository, tag = image.rsplit(":", 1)
    chunks = list(docker_client.api.push(repository, tag=tag, stream=True, decode=True,
                                         auth_config={"username": "", "password": ""}))
    assert any("error" in c for c in chunks), chunks


def test_username_and_token_build_push_and_find_the_image_over_tls(registry, docker_client, context, image, caplog):
    caplog.set_level(logging.DEBUG)
    access = registry_access(registry.username, registry.password)
    builder = DockerBuilder(registry.host, client=docker_client, access=access)
    events: list[str] = []

    builder.ensure_image(context, image, lambda message, **data: events.append(f"{message} {data}"))

    assert builder.image_exists(image)
    assert not builder.image_exists(image.rsplit(":", 1)[0] + ":" + "0" * 32)
    assert access._schemes.get(registry.host, "https") == "https"  # TLS, no fallback to HTTP
    assert "pushed" in events[-1]
    shown = "\n".join(events) + caplog.text + repr(access.credentials(registry.host))
    assert registry.password not in shown
    assert base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode() not in shown


def test_docker_logins_config_is_used_when_no_token_is_set(registry, docker_client, context, image,
                                                           tmp_path, monkeypatch):
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    access = registry_access()
    builder = DockerBuilder(registry.host, client=docker_client, access=access)

    builder.ensure_image(context, image, lambda *a, **k: None)

    assert builder.image_exists(image)
    assert "logged in as deployer (Docker's config (docker login))" in access.login(registry.host)


def test_a_wrong_token_is_refused_by_name_of_its_source(registry, docker_client, image):
    builder = DockerBuilder(registry.host, client=docker_client, access=registry_access("deployer", "wrong"))

    with pytest.raises(BuildError, match=r"refused the credentials from MAINLINE_REGISTRY_USERNAME \(401\)"):
        builder.image_exists(image)


def test_the_previews_image_size_is_read_with_the_login_and_is_none_without(registry, docker_client, context,
                                                                            image):
    from bot.preview_images import manifest_size

    access = registry_access(registry.username, registry.password)
    DockerBuilder(registry.host, client=docker_client, access=access).ensure_image(context, image, lambda *a, **k: None)

    assert (manifest_size(registry.host, image, access) or 0) > 0
    assert manifest_size(registry.host, image, RegistryAccess(lambda host: None)) is None  # refused: no size


def test_an_open_registry_is_asked_without_looking_up_a_login(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "mainline-missing-helper"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # a helper that would fail if asked
    access = registry_access()

    assert not DockerBuilder("127.0.0.1:5000", access=access).image_exists(f"127.0.0.1:5000/mltest-open:{'0' * 40}")
    assert access.login("127.0.0.1:5000") == "127.0.0.1:5000: open, no login needed"
