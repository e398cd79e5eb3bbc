"""Issue 13's lead time: merge → every replica serving the new version (the bake not counted),
Mainline against a plain script doing the same steps by hand on the same app.

Mainline: a pull request merged on the GitHub stand-in; the bot (`mainline serve` + one
`mainline worker`, the embedded SQLite defaults, or --scale for PostgreSQL + Redis) hears the
webhooks, gates, builds, pushes, rolls out; the clock stops at the deploy's `verifying` event
(rolling_out → verifying: every replica serves the new release behind HAProxy), checked by asking
HAProxy until it answers the new version.
By hand: `git clone` at the merge sha from the stand-in, `docker build`, `docker push` to the
registry, `docker run` of the replicas (host network, one port each), poll each `/health` until
200. Same app (the repository's sample app: busybox httpd FROM scratch), same Docker engine,
same registry. Each run merges a new version (so nothing is cached but the base layers, for both).

    .venv/bin/python bench/lead_time.py [--rounds 3] [--replicas 2] [--strategy rolling] [--scale]

Last line: `lead time: mainline Xs by hand Ys ratio Z` (medians over the rounds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rig import Rig, RigError, free_port, iso_seconds, wait_until  # noqa: I001

import docker
import requests

REGISTRY = "127.0.0.1:5000"


def by_hand(rig: Rig, sha: str, replicas: int, tag: str) -> float:
    """clone at the sha, build, push, start the replicas, wait until each is healthy."""
    svc = rig.services[0]
    client = docker.from_env()
    image = f"{REGISTRY}/byhand-{rig.run_id}:{sha[:12]}-{tag}"
    names = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="byhand-") as tmp:
        src = Path(tmp) / "src"
        subprocess.run(["git", "clone", "--quiet", f"{rig.github.url}/{svc.repo}.git", str(src)], check=True)
        subprocess.run(["git", "-C", str(src), "checkout", "--quiet", sha], check=True)
        subprocess.run(["docker", "build", "--quiet", "-t", image, str(src)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["docker", "push", "--quiet", image], check=True, stdout=subprocess.DEVNULL)
    ports = [free_port() for _ in range(replicas)]
    try:
        for i, port in enumerate(ports):
            name = f"byhand-{rig.run_id}-{tag}-{i}"
            names.append(name)
            client.containers.run(image, name=name, detach=True, network_mode="host", environment={"PORT": str(port)},
                                  labels={"mainline.bench": rig.run_id})
        for port in ports:
            ok = wait_until(lambda p=port: requests.get(f"http://127.0.0.1:{p}/health", timeout=2).ok, 60, 0.05)
            if not ok:
                raise RigError(f"the hand-started replica on {port} never became healthy")
        return time.monotonic() - started
    finally:
        for name in names:
            client.containers.get(name).remove(force=True)


def by_mainline(rig: Rig, version: str, n: int, timeout: float) -> tuple[str, float, dict]:
    svc = rig.services[0]
    # A pull request is opened well before it is merged: its preview check run is done first,
    # so the clock measures the merge alone.
    number = rig.open_change(svc, version, n)
    head = rig.github.repo(svc.repo).pulls[number].head_sha
    if not wait_until(lambda: any(r.head_sha == head for r in rig.github.repo(svc.repo).check_runs.values()), 60, 0.1):
        raise RigError(f"no preview of #{number}")
    time.sleep(1.0)
    sha = rig.merge_change(svc, number, version)
    merged_at = svc.merges[-1][1]

    def verifying() -> float | None:
        for d in rig.deploys(svc):
            if d["sha"] == sha:
                at = [iso_seconds(e["at"]) for e in d["events"] if e["kind"] == "verifying"]
                if at and rig.serves(svc) == f"{svc.name} {version}":
                    return at[0]
        return None

    if not wait_until(lambda: verifying() is not None, timeout, 0.05):
        raise RigError(f"{version} never reached verifying: {[(d['sha'][:8], d['state']) for d in rig.deploys(svc)]}")
    at = verifying() or 0.0
    deploy = next(d for d in rig.deploys(svc) if d["sha"] == sha)
    if not wait_until(lambda: next(d for d in rig.deploys(svc) if d["sha"] == sha)["state"] == "live", timeout, 0.2):
        raise RigError(f"{version} never went live")
    return sha, at - merged_at, deploy


def phases(deploy: dict, merged_at: float, steps: bool = False) -> str:
    """Where Mainline's time went: seconds from the merge to each state change (and step)."""
    marks = []
    for e in deploy["events"]:
        if e["kind"] != "step" or steps:
            name = e["data"].get("step", e["kind"]) if e["kind"] == "step" else e["kind"]
            marks.append(f"{name} +{(iso_seconds(e['at']) or 0) - merged_at:.2f}s")
    return ", ".join(marks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--scale", action="store_true", help="PostgreSQL + Redis instead of SQLite")
    parser.add_argument("--reconcile", type=float, default=15.0, help="MAINLINE_RECONCILE_SECONDS (its default)")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--steps", action="store_true", help="print each step's time from the merge")
    args = parser.parse_args()
    rig = Rig(1, scale=args.scale, replicas=args.replicas, bake="1s", reconcile=args.reconcile, prefix="lead",
              faults=False,
              extra_env={"MAINLINE_PUBLIC_READ": "true"})
    mainline, hand = [], []
    try:
        assert rig.bot is not None
        rig.bot.start_web(1)
        rig.bot.start_worker()
        svc = rig.services[0]
        by_mainline(rig, "v1", 0, args.timeout)  # the first release: HAProxy, mirror, base layers exist after
        for n in range(1, args.rounds + 1):
            sha, took, deploy = by_mainline(rig, f"v{n + 1}", n, args.timeout)
            mainline.append(took)
            print(f"  round {n}: mainline {took:.2f}s ({phases(deploy, svc.merges[-1][1], args.steps)})", flush=True)
            manual = by_hand(rig, sha, args.replicas, f"r{n}")
            hand.append(manual)
            print(f"  round {n}: by hand {manual:.2f}s", flush=True)
    finally:
        rig.stop()
    m, h = statistics.median(mainline), statistics.median(hand)
    print(f"lead time: mainline {m:.1f}s by hand {h:.1f}s ratio {m / h:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
