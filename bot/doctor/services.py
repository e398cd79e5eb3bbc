"""The doctor's checks of Mainline's database, Slack, the image registry, the Docker engine(s) and
HAProxy."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator

import requests

from bot.doctor.findings import Finding, fail, ok, skip

# Slack scopes slack-app.yml asks for, and why.
SLACK_SCOPES = {"chat:write": "post and update deploy cards", "chat:write.public": "post in channels it has "
                "not joined", "commands": "the /deploy, /rollback, /lock … slash commands"}
PROBE_REPOSITORY = "mainline-doctor"


def database(settings) -> Iterator[Finding]:
    from bot.infra.db.maintenance import schema_state

    state = schema_state(settings.database_url)
    if state.at_head:
        yield ok("database", "schema", state.describe())
    else:
        yield fail("database", "schema", state.describe(), "run `mainline db upgrade`")


def slack(settings) -> Iterator[Finding]:
    if settings.slack_bot_token is None:
        yield skip("slack", "bot token", "SLACK_BOT_TOKEN is not set: no Slack cards nor commands")
        return
    resp = requests.post(settings.slack_api_url.rstrip("/") + "/auth.test", timeout=15,
                         headers={"Authorization": f"Bearer {settings.slack_bot_token.get_secret_value()}"})
    body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
    if resp.status_code != 200 or not body.get("ok"):
        yield fail("slack", "auth.test", f"{resp.status_code} {body.get('error', resp.text[:100])}",
                   "SLACK_BOT_TOKEN is wrong or revoked: copy the Bot User OAuth Token (xoxb-…) again")
        return
    yield ok("slack", "auth.test", f"bot {body.get('user')} in {body.get('team')}")
    granted = {s.strip() for s in resp.headers.get("x-oauth-scopes", "").split(",") if s.strip()}
    missing = [f"{scope} ({why})" for scope, why in SLACK_SCOPES.items() if scope not in granted]
    if missing:
        yield fail("slack", "scopes", "missing " + "; ".join(missing),
                   "add them under oauth_config.scopes.bot (slack-app.yml), then reinstall the app")
    else:
        yield ok("slack", "scopes", ", ".join(sorted(granted)))
    if settings.slack_signing_secret is None:
        yield fail("slack", "signing secret", "SLACK_SIGNING_SECRET is not set: slash commands are refused",
                   "copy the Signing Secret from the app's Basic Information page")


def _tiny_context() -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY probe.txt /probe.txt\n"),
                           ("probe.txt", f"mainline doctor {time.time()}\n".encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def registry(settings) -> Iterator[Finding]:
    import docker

    from bot.infra.targets.docker.build import DockerBuilder
    from bot.infra.targets.docker.registry import access_for

    access = access_for(settings)
    host = settings.registry.split("/", 1)[0]
    yield ok("registry", "login", access.login(host))
    client = docker.from_env()
    image = f"{settings.registry}/{PROBE_REPOSITORY}:probe"
    try:
        for chunk in client.api.build(fileobj=_tiny_context(), custom_context=True, tag=image, rm=True, decode=True):
            if "error" in chunk:
                raise RuntimeError(f"building the probe image: {chunk['error']}")
        DockerBuilder(settings.registry, client=client, access=access).push(image)
        yield ok("registry", "push", f"pushed and found {image}")
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(image, force=True)
        client.close()


def docker_hosts(hosts: list[str]) -> Iterator[Finding]:
    """Each Docker engine: DOCKER_HOST (or the local socket) and every `--docker-host` given."""
    import docker

    default = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    for url in dict.fromkeys([default, *hosts]):
        try:
            # ssh:// goes through the OpenSSH client, as the docker CLI does (keys, known_hosts).
            client = docker.DockerClient(base_url=url, use_ssh_client=url.startswith("ssh://"), timeout=15)
        except docker.errors.DockerException as exc:
            yield fail("docker", url, f"cannot reach the engine: {exc}", _docker_fix(url))
            continue
        try:
            version = client.version()
            yield ok("docker", url, f"Docker {version.get('Version')} (API {version.get('ApiVersion')}) "
                     f"on {version.get('Os')}/{version.get('Arch')}")
        except (docker.errors.DockerException, requests.RequestException) as exc:
            yield fail("docker", url, f"cannot reach the engine: {type(exc).__name__}: {str(exc)[:200]}",
                       _docker_fix(url))
        finally:
            client.close()


def _docker_fix(url: str) -> str:
    if url.startswith("ssh://"):
        return "check `ssh HOST docker version` works as the worker's user (key, known_hosts, docker group)"
    if url.startswith("tcp://"):
        return "use tcp://HOST:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, and open the port to the worker"
    return "start dockerd, and add the worker's user to the `docker` group"


def haproxy() -> Iterator[Finding]:
    from bot.infra.targets.docker.haproxy import HAPROXY_BIN

    binary = HAPROXY_BIN if shutil.which(HAPROXY_BIN) else shutil.which("haproxy")
    if binary is None:
        yield fail("haproxy", "binary", f"{HAPROXY_BIN} not found: the docker target cannot balance",
                   "apt-get install haproxy (2.4 or newer) where the worker runs the load balancer")
        return
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    yield ok("haproxy", "binary", done.stdout.split("\n", 1)[0].strip() or binary)
