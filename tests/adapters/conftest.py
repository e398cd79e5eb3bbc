"""Fixtures for the Docker target tests: real engine, real registry, real HAProxy."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import docker
import pytest
import requests

from bot.domain import HealthPolicy, RolloutPlan
from bot.infra.targets.docker.build import DockerBuilder
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.target import LABEL_SERVICE, DockerTarget
from sandbox.sample_app import write_sample_app

ENVIRONMENT = "production"
FAST_HEALTH = HealthPolicy(path="/health", interval=0.2, failures=3, bake=2.0, max_error_rate=0.01, timeout=10.0)
# name -> (version string, sample app mode)
RELEASES = {
    "v1": ("webapp v1", "healthy"),
    "v2": ("webapp v2", "healthy"),
    "v3": ("webapp v3", "unhealthy"),
    "v4": ("webapp v4", "erroring"),
}


@dataclass(frozen=True)
class Built:
    sha: str
    image: str
    body: str


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def builder(docker_client) -> DockerBuilder:
    return DockerBuilder(client=docker_client)


@pytest.fixture(scope="session")
def releases(builder, tmp_path_factory) -> dict[str, Built]:
    """The sample app's releases, built and pushed once per session under a fresh repository."""
    repo = f"mltest-{uuid.uuid4().hex[:8]}"
    built = {}
    for key, (version, mode) in RELEASES.items():
        context = tmp_path_factory.mktemp(key)
        write_sample_app(context, version, mode)
        sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        image = builder.ensure_image(context, f"127.0.0.1:5000/{repo}:{sha}", lambda *a, **k: None)
        built[key] = Built(sha, image, version)
    return built


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def service() -> str:
    # Unique per test, so parallel runs and leftovers never clash.
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def listen() -> str:
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def state_dir():
    # Short on purpose: HAProxy's admin socket path must fit in 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="ml-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def target(state_dir, docker_client, service):
    yield DockerTarget(state_dir, client=docker_client)
    for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={service}"}):
        container.remove(force=True)
    HAProxy(state_dir, service, ENVIRONMENT, "").stop()


@pytest.fixture
def plan_for(service, listen, releases):
    def make(key: str, strategy: str = "rolling", replicas: int = 2, health: HealthPolicy = FAST_HEALTH) -> RolloutPlan:
        built = releases[key]
        return RolloutPlan(service=service, environment=ENVIRONMENT, sha=built.sha, image=built.image,
                           replicas=replicas, strategy=strategy, health=health, listen=listen)
    return make


@dataclass
class Traffic:
    """Clients GETting a URL in a loop until stopped; every failure is kept."""

    url: str
    clients: int = 3
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    resp = session.get(self.url, timeout=5)
                    outcome = None if resp.status_code == 200 else f"{resp.status_code} {resp.text.strip()}"
                    body = resp.text.strip()
                except requests.RequestException as exc:
                    outcome, body = f"{type(exc).__name__}: {exc}", ""
                with self._lock:
                    self.sent += 1
                    if outcome:
                        self.failures.append(outcome)
                    else:
                        self.bodies.append(body)

    def __enter__(self) -> Self:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def traffic(listen):
    def start(path: str = "/") -> Traffic:
        return Traffic(f"http://{listen}{path}")
    return start


class Crash(Exception):
    """Stands for the worker process dying mid-step."""


class Events:
    """An on_event sink that keeps every step, and can fail at a chosen one (a crash)."""

    def __init__(self, crash_at: str | None = None, crash_after: int = 1):
        self.lines: list[str] = []
        self.steps: list[str] = []
        self.crash_at = crash_at
        self.crash_after = crash_after

    Crash = Crash

    def __call__(self, message: str, **data) -> None:
        self.lines.append(message)
        self.steps.append(data.get("step", ""))
        if self.crash_at and self.steps.count(self.crash_at) == self.crash_after:
            raise Crash(f"killed at {self.crash_at}")


@pytest.fixture
def events():
    return Events


@pytest.fixture
def fast_health() -> HealthPolicy:
    return FAST_HEALTH
