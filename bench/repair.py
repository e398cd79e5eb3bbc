"""Issue 16's repairs: how long one repair pass takes to bring a real app back, on real Docker
and HAProxy, for each breakage: a web replica killed, the worker removed, HAProxy SIGKILLed.
The reconciler runs a pass every MAINLINE_RECONCILE_SECONDS, so the time to repair is at most
that interval plus the figure printed here (the e2e test asserts 2 x the interval).

The app: the repository's sample app (busybox httpd, FROM scratch), 2 web replicas and 1 worker,
env and one file secret, built and pushed to 127.0.0.1:5000 once.

    .venv/bin/python bench/repair.py [--rounds 3]

Last line: `repair: replica=Xs worker=Ys haproxy=Zs` (medians over the rounds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker

from bot.domain import HealthPolicy, RolloutPlan
from bot.domain.app import AppSpec, Role
from bot.infra.secrets import SecretResolver
from bot.infra.targets.docker.build import DockerBuilder
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.target import DockerTarget
from sandbox.sample_app import WORKER_COMMAND, write_sample_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="mlr-"))
    service = f"bench{uuid.uuid4().hex[:8]}"
    listen = f"127.0.0.1:{free_port()}"
    try:
        write_sample_app(work / "app", "bench v1")
        sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        image = DockerBuilder(client=client).ensure_image(work / "app", f"127.0.0.1:5000/{service}:{sha}",
                                                          lambda *a, **k: None)
        (work / "secrets").mkdir()
        (work / "secrets" / "api-key").write_text("bench-secret-value")
        app = AppSpec(env=(("APP_ENV", "bench"),), secrets=(("API_KEY", "file:api-key"),),
                      roles=(Role("web", replicas=2, http=True),
                             Role("worker", tuple(WORKER_COMMAND.split()), replicas=1, min_ready=0.5, stop_grace=3)),
                      cpus=0.5, memory=64 * 1024 ** 2)
        plan = RolloutPlan(service, "production", sha, image, 2, "rolling",
                           HealthPolicy(interval=0.2, failures=3, bake=0.5, timeout=20), listen, app=app)
        target = DockerTarget(work / "state", client=client, secrets=SecretResolver(work / "secrets"))
        target.roll_out(plan, lambda *a, **k: None)
        lb = HAProxy(work / "state", service, "production", listen)

        def ours(role: str) -> list:
            return [c for c in client.containers.list(filters={"label": f"mainline.service={service}"})
                    if c.labels.get("mainline.role") == role]

        breaks = {"replica": lambda: ours("web")[0].kill(), "worker": lambda: ours("worker")[0].remove(force=True),
                  "haproxy": lambda: os.kill(lb.pid() or 0, signal.SIGKILL)}
        took: dict[str, list[float]] = {name: [] for name in breaks}
        for _ in range(args.rounds):
            for name, breaking in breaks.items():
                breaking()
                time.sleep(0.2)
                started = time.monotonic()
                repairs = target.repair(plan, lambda *a, **k: None)
                took[name].append(time.monotonic() - started)
                print(f"{name}: {took[name][-1]:.2f}s: {'; '.join(repairs)}")
        print("repair: " + " ".join(f"{name}={statistics.median(v):.2f}s" for name, v in took.items()))
    finally:
        for c in client.containers.list(all=True, filters={"label": f"mainline.service={service}"}):
            c.remove(force=True)
        HAProxy(work / "state", service, "production", "").stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
