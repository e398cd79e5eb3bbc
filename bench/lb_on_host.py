"""The load balancer on a Docker host: failed requests while it moves there from beside the
worker, during rolling deploys through it, and while it moves back; how long each takes.

Replicas on the `tls` (tcp:// with mutual TLS) and `ssh` (ssh:// through sshd) engines that
`scripts/services.sh up` starts; the load balancer's container on the ssh engine. Steady load
from a few concurrent clients on 127.0.0.1.

    .venv/bin/python bench/lb_on_host.py [--clients 4] [--replicas 2]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lb_during_deploy import Load, free_port, percentile  # noqa: E402

from bot.domain import HealthPolicy, RolloutPlan  # noqa: E402
from bot.domain.app import AppSpec, DockerHost  # noqa: E402
from bot.infra.secrets import SecretResolver  # noqa: E402
from bot.infra.targets.docker.build import DockerBuilder  # noqa: E402
from bot.infra.targets.docker.haproxy import HAProxy  # noqa: E402
from bot.infra.targets.docker.hosts import HostAccess  # noqa: E402
from bot.infra.targets.docker.lb_container import LABEL_LB  # noqa: E402
from bot.infra.targets.docker.target import LABEL_SERVICE, DockerTarget  # noqa: E402
from sandbox.sample_app import write_sample_app  # noqa: E402

STATE = Path("/tmp/mainline-services")
TLS = DockerHost("tcp://127.0.0.1:2376", "engines/tls")
SSH = DockerHost("ssh://root@127.0.0.1:2222")
IMAGE = "127.0.0.1:5000/mainline-haproxy:local"
ENGINES = {TLS.url: f"unix://{STATE}/engines/tls/docker.sock", SSH.url: f"unix://{STATE}/engines/ssh/docker.sock"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()

    client = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="ml-bench-"))
    secrets = work / "secrets"
    shutil.copytree(STATE / "engines" / "tls" / "certs", secrets / "engines" / "tls")
    access = HostAccess((TLS.url, SSH.url), secrets, STATE / "sshd" / "id_ed25519", STATE / "sshd" / "known_hosts",
                        haproxy_image=IMAGE)
    service = f"bench{uuid.uuid4().hex[:6]}"
    listen = f"127.0.0.1:{free_port()}"
    target = DockerTarget(work / "state", secrets=SecretResolver(secrets), hosts=access)
    health = HealthPolicy(path="/health", interval=0.25, failures=3, bake=1.0, timeout=20.0)
    quiet = lambda *a, **k: None  # noqa: E731
    beside, on_host = AppSpec(hosts=(TLS, SSH)), AppSpec(hosts=(TLS, SSH), lb_host=SSH.url)
    plans = {}
    try:
        for version in ("v1", "v2"):
            context = work / version
            write_sample_app(context, f"webapp {version}")
            sha = hashlib.sha1(f"mainline-bench-{version}-{(context / 'app.conf').read_text()}".encode()).hexdigest()
            image = DockerBuilder(client=client).ensure_image(context, f"127.0.0.1:5000/mainline-bench:{sha}", quiet)
            plans[version] = RolloutPlan(service, "production", sha, image, args.replicas, "rolling", health, listen)
        target.roll_out(replace(plans["v1"], app=beside), quiet)

        print(f"load balancer {listen}, {args.replicas} replicas on {TLS.url} and {SSH.url}, "
              f"{args.clients} concurrent clients, GET /")
        print(f"{'phase':<44}{'requests':>10}{'failed':>8}{'p99 ms':>9}{'seconds':>9}  ends on")
        phases = (("move: beside the worker -> ssh host", replace(plans["v2"], app=on_host)),
                  ("rolling deploy through it v2 -> v1", replace(plans["v1"], app=on_host)),
                  ("rolling deploy through it v1 -> v2", replace(plans["v2"], app=on_host)),
                  ("move: ssh host -> beside the worker", replace(plans["v1"], app=beside)))
        failed = {}
        for phase, plan in phases:
            with Load(f"http://{listen}/", args.clients) as load:
                start = time.monotonic()
                target.roll_out(plan, quiet)
                took = time.monotonic() - start
            body = requests.get(f"http://{listen}/", timeout=5).text.strip()
            lat = load.latencies
            failed[phase] = len(load.failures)
            print(f"{phase:<44}{len(lat):>10}{len(load.failures):>8}{percentile(lat, 99) * 1000:>9.1f}"
                  f"{took:>9.1f}  {body}")
            if load.failures:
                print(f"  failures: {sorted(set(load.failures))}")
        deploys = sum(n for phase, n in failed.items() if phase.startswith("rolling"))
        moves = sum(n for phase, n in failed.items() if phase.startswith("move"))
        print(f"lb on host: deploys_failed={deploys} moves_failed={moves}")
        return 0 if deploys == 0 else 1
    finally:
        for socket in ENGINES.values():
            engine = docker.DockerClient(base_url=socket)
            for label in (f"{LABEL_SERVICE}={service}", f"{LABEL_LB}=mainline-lb-{service}-production"):
                for container in engine.containers.list(all=True, filters={"label": label}):
                    container.remove(force=True)
            engine.close()
        HAProxy(work / "state", service, "production", listen).stop()
        shutil.rmtree(work, ignore_errors=True)
        client.close()


if __name__ == "__main__":
    sys.exit(main())
