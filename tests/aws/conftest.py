"""AWS through moto in server mode: one `moto_server` on 127.0.0.1 for the session, reset before
each test; boto3 reaches it through AWS_ENDPOINT_URL, so every call is real HTTP that botocore
builds and parses from the service models."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import docker
import pytest
import requests
from aws_world import DESIRED, ECR_HOST, OLD_SHA, REGION, EcsWorld

MOTO_SERVER = Path(sys.executable).with_name("moto_server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "MOTO_ECS_SERVICE_RUNNING": str(DESIRED)}
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{url}/moto-api/data.json", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"moto_server did not start on {url}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: werkzeug's reloader-less server lingers
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def aws(moto_url, monkeypatch, tmp_path) -> boto3.Session:
    """A boto3 session on a freshly reset moto, with dummy credentials and no local AWS config."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=5).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return boto3.Session(region_name=REGION)


@pytest.fixture
def moto_data(moto_url):
    """Moto's record of every model it holds (SES sent mail included), as its API serves it."""

    def read() -> dict:
        return requests.get(f"{moto_url}/moto-api/data.json", timeout=5).json()

    return read


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def local_image(docker_client, tmp_path_factory) -> str:
    """A tiny image built FROM scratch with busybox, in the local engine (nothing is pulled)."""
    context = tmp_path_factory.mktemp("image")
    shutil.copy(shutil.which("busybox") or "/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n')
    tag = "mainline-aws-test:local"
    docker_client.images.build(path=str(context), tag=tag, rm=True)
    yield tag
    # Another run on the same engine may have removed the shared tag already.
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(tag, force=True)


@pytest.fixture
def ecs_world(aws) -> EcsWorld:
    return EcsWorld(aws, f"{ECR_HOST}/web:{OLD_SHA}")
