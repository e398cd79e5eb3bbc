"""Failed requests through the load balancer during a rolling deploy and during a rollback.

Steady load from a few concurrent clients (127.0.0.1 only), for as long as each roll-out runs
(bounded in requests and time). Target: zero failed requests.

    .venv/bin/python bench/lb_during_deploy.py [--clients 4] [--replicas 2]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.domain import HealthPolicy, RolloutPlan  # noqa: E402
from bot.infra.targets.docker.build import DockerBuilder  # noqa: E402
from bot.infra.targets.docker.haproxy import HAProxy  # noqa: E402
from bot.infra.targets.docker.target import LABEL_SERVICE, DockerTarget  # noqa: E402
from sandbox.sample_app import write_sample_app  # noqa: E402

MAX_REQUESTS = 200_000
MAX_SECONDS = 180.0
ENVIRONMENT = "production"


class Load:
    def __init__(self, url: str, clients: int):
        self.url, self.clients = url, clients
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]

    def run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        with requests.Session() as session:
            while not self.stop.is_set() and time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    resp = session.get(self.url, timeout=5)
                    failure = None if resp.status_code == 200 else f"HTTP {resp.status_code}"
                except requests.RequestException as exc:
                    failure = type(exc).__name__
                elapsed = time.perf_counter() - start
                with self.lock:
                    self.latencies.append(elapsed)
                    if failure:
                        self.failures.append(failure)
                    if len(self.latencies) >= MAX_REQUESTS:
                        self.stop.set()

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()

    client = docker.from_env()
    builder = DockerBuilder(client=client)
    work = Path(tempfile.mkdtemp(prefix="ml-bench-"))
    service = f"bench{uuid.uuid4().hex[:6]}"
    listen = f"127.0.0.1:{free_port()}"
    target = DockerTarget(work / "state", client=client)
    health = HealthPolicy(path="/health", interval=0.25, failures=3, bake=2.0, timeout=20.0)
    quiet = lambda *a, **k: None  # noqa: E731
    plans = {}
    try:
        for version in ("v1", "v2"):
            context = work / version
            write_sample_app(context, f"webapp {version}")
            sha = hashlib.sha1(f"mainline-bench-{version}-{(context / 'app.conf').read_text()}".encode()).hexdigest()
            image = builder.ensure_image(context, f"127.0.0.1:5000/mainline-bench:{sha}", quiet)
            plans[version] = RolloutPlan(service, ENVIRONMENT, sha, image, args.replicas, "rolling", health, listen)
        target.roll_out(plans["v1"], quiet)

        print(f"load balancer {listen}, {args.replicas} replicas, {args.clients} concurrent clients, GET /")
        print(f"{'phase':<28}{'requests':>10}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'seconds':>9}"
              "  ends on")
        worst = 0
        for phase, plan in (("rolling deploy v1 -> v2", plans["v2"]), ("rollback v2 -> v1", plans["v1"])):
            with Load(f"http://{listen}/", args.clients) as load:
                start = time.monotonic()
                target.roll_out(plan, quiet)
                took = time.monotonic() - start
            body = requests.get(f"http://{listen}/", timeout=5).text.strip()
            lat = load.latencies
            print(f"{phase:<28}{len(lat):>10}{len(load.failures):>8}{percentile(lat, 50) * 1000:>9.1f}"
                  f"{percentile(lat, 99) * 1000:>9.1f}{max(lat) * 1000:>9.1f}{took:>9.1f}  {body}")
            if load.failures:
                print(f"  failures: {sorted(set(load.failures))}")
            worst = max(worst, len(load.failures))
        print("result:", "PASS (zero failed requests)" if worst == 0 else "FAIL")
        return 0 if worst == 0 else 1
    finally:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={service}"}):
            container.remove(force=True)
        HAProxy(work / "state", service, ENVIRONMENT, listen).stop()
        shutil.rmtree(work, ignore_errors=True)
        client.close()


if __name__ == "__main__":
    sys.exit(main())
