"""Mainline's own image: the repository's Dockerfile builds on `python:3.11-slim` (made on this
machine from Debian by scripts/python-base.sh when it cannot be pulled, once per machine), and the
image serves /healthz with `serve` and starts a worker with `worker`.

Wall time (measured with the machine's 2 cores shared, load average 20-25): 2 min 24 s with the
base, the wheels and the dependency layer cached (a source change); 5 min 31 s when pyproject.toml
changed; a new machine adds debootstrap (1.5-2.5 min) and the wheels."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import requests

from tests.registry_world import free_port

ROOT = Path(__file__).resolve().parents[2]
BASE = "python:3.11-slim"
SOURCES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "bot", "handlers", "checks", "sandbox",
           "deploy/docker-entrypoint.sh")
pytestmark = [pytest.mark.docker, pytest.mark.slow]


def wheelhouse() -> Path:
    """Wheels of every dependency (the build has no PyPI of its own here), kept per pyproject.toml."""
    # Debian's Python is 3.11.2: redis then also wants async-timeout, which a newer Python skips.
    extra = ["setuptools", "async-timeout>=4.0.3"]
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + repr(extra).encode()).hexdigest()[:16]
    cache = Path.home() / ".cache" / "mainline-test" / f"wheels-{digest}"
    if not (cache / "done").exists():
        shutil.rmtree(cache, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(cache), ".[scale]", *extra],
                       cwd=ROOT, check=True, timeout=600)
        for own in cache.glob("mainline-*.whl"):
            own.unlink()  # built from the sources in the image, never from a stale wheel
        (cache / "done").write_text("ok\n")
    return cache


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode != 0:
        subprocess.run([str(ROOT / "scripts" / "python-base.sh"), BASE], check=True, timeout=900)
    context = tmp_path_factory.mktemp("context")
    for name in SOURCES:
        source, target = ROOT / name, context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    shutil.copytree(wheelhouse(), context / "wheels")
    # One tag, kept: the next build reuses its apt layer (Docker's cache), the previous image goes.
    tag = "mainline-test:packaging"
    client = docker.from_env()
    try:
        # The engine here has host networking only (scripts/services.sh); apt reaches Debian's mirror.
        client.images.build(path=str(context), tag=tag, network_mode="host", rm=True, forcerm=True)
    except docker.errors.BuildError as exc:
        log = "".join(str(c.get("stream", c.get("error", ""))) for c in exc.build_log)[-4000:]
        pytest.fail(f"the Dockerfile did not build: {exc}\n{log}")
    yield client, tag
    client.close()


def started(client, tag: str, *command: str, env: dict[str, str]):
    return client.containers.run(tag, list(command), detach=True, network_mode="host", environment=env,
                                 labels={"mainline.test": "packaging"})


def test_the_image_serves_healthz_and_runs_a_worker(image):
    client, tag = image
    port = free_port()
    env = {"GITHUB_WEBHOOK_SECRET": "packaging-test", "PORT": str(port), "MAINLINE_HOST": "127.0.0.1"}
    web = started(client, tag, "serve", "--workers", "1", env=env)
    worker = started(client, tag, "worker", env=env)
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            time.sleep(0.5)
        assert answer is not None and answer.status_code == 200, web.logs().decode()[-3000:]
        while time.monotonic() < deadline and b"worker started" not in worker.logs():
            time.sleep(0.5)
        assert b"worker started" in worker.logs(), worker.logs().decode()[-3000:]
        code, output = worker.exec_run(["/opt/mainline/bin/mainline", "db", "current"])
        assert (code, b"(head)" in output) == (0, True), output  # the worker migrated on start
    finally:
        for container in (web, worker):
            container.remove(force=True)
