"""Issue 11's canary figures, on real Docker, HAProxy and Prometheus (Debian's, one of our own
on a free port, scraping HAProxy's exporter every second).

Steady load (4 clients, ~300 requests/s on 2 cores) runs through the service's HAProxy while the
Docker target rolls releases out with `strategy: canary` (the same DockerTarget, policy and judge
the worker uses; only GitHub and the engine's bookkeeping are left out, to keep it fast):

1. a bad release, whose /health is fine but whose `GET /` answers 500 to 20% of requests, is
   canaried at 10% then 50%; printed: the requests that failed for users (5xx or no answer, from
   the canary's start until the load balancer set its weight to 0), the time to detect (the
   canary taking traffic → its weight at 0), and the bound the steps imply:
   weight x error rate x detection time x request rate;
2. N good releases (the same app as the baseline, each its own image and sha: any difference
   between canary and baseline is noise), each through every step and promoted; printed: wrong
   verdicts (a fail, a canary stuck as inconclusive, or no canary at all), which must be 0.

    .venv/bin/python bench/canary.py [--good 20] [--errors 20]

Last line: `canary: failed_for_users=N detect=Xs bound=N wrong_verdicts=0/20 (took Ys)`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.canary.errors import CanaryFailedError, CanaryStuckError  # noqa: E402
from bot.canary.policy import CanaryPolicy, CanaryStep, MetricSpec  # noqa: E402
from bot.domain import HealthPolicy, RolloutPlan  # noqa: E402
from bot.infra.targets.docker.build import DockerBuilder  # noqa: E402
from bot.infra.targets.docker.target import DockerTarget  # noqa: E402
from sandbox.canary_kit import CanaryApp, Load, PrometheusServer, free_port  # noqa: E402

SERVICE = "canarybench"
HEALTH = HealthPolicy(path="/health", interval=0.5, failures=3, bake=1.0, max_error_rate=0.05, timeout=20.0)


def policy(prometheus_url: str, pause: float) -> CanaryPolicy:
    # Patient with slow traffic (a shared machine may serve only ~100 requests/s): 30 intervals of
    # 1s in a row may say "too few requests" before a canary counts as stuck.
    return CanaryPolicy(steps=(CanaryStep(10, pause), CanaryStep(50, pause)), interval=1.0, min_requests=50,
                        failure_limit=1, inconclusive_limit=30,
                        metrics=(MetricSpec("error-rate", builtin="http_5xx_ratio", max_increase=0.01),),
                        prometheus_url=prometheus_url)


class Bench:
    def __init__(self, state: Path, prometheus: PrometheusServer, port: int):
        self.state, self.prometheus, self.port = state, prometheus, port
        self.target = DockerTarget(state)
        self.app = CanaryApp(SERVICE, port, prometheus.url)
        self.events: list[tuple[float, str, dict]] = []

    def image(self, version: str, errors: int) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            image = f"127.0.0.1:5000/{SERVICE}:{version}-{errors}"
            DockerBuilder().ensure_image(self.app.write(Path(tmp), version, errors), image, lambda *_, **__: None)
            return image

    def plan(self, sha: str, image: str, canary: CanaryPolicy | None) -> RolloutPlan:
        return RolloutPlan(SERVICE, "production", sha, image, 2, "canary", HEALTH, f"127.0.0.1:{self.port}",
                           canary=canary, control=(lambda: None) if canary else None)

    def on_event(self, message: str, **data) -> None:
        self.events.append((time.monotonic(), message, data))

    def moment(self, since: float, step: str) -> float | None:
        return next((t for t, _, d in self.events if t >= since and d.get("step") == step), None)

    def cleanup(self) -> None:
        client = docker.from_env()
        for c in client.containers.list(all=True, filters={"label": f"mainline.service={SERVICE}"}):
            c.remove(force=True)
        self.target.load_balancer(SERVICE, "production").stop()


def sha(n: int) -> str:
    return f"{n:012x}".rjust(40, "a")[::-1]  # distinct in its first 12 characters, as real shas are


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--good", type=int, default=20)
    parser.add_argument("--errors", type=int, default=20, help="percent of requests the bad release fails")
    args = parser.parse_args()
    started = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="mainline-canary-bench-"))
    prometheus = PrometheusServer(state / "prom", state / "prometheus").start()
    bench = Bench(state, prometheus, free_port())
    load = None
    try:
        good, bad = bench.image("good", 0), bench.image("bad", args.errors)
        goods = [bench.image(f"good{n}", 0) for n in range(args.good)]
        bench.target.roll_out(bench.plan(sha(1), good, None), bench.on_event)
        load = Load(bench.port).start()
        time.sleep(3)  # Prometheus has scraped the baseline
        rate = (load.ok + load.failed) / 3

        begun = time.monotonic()
        try:
            bench.target.roll_out(bench.plan(sha(2), bad, policy(prometheus.url, 3.0)), bench.on_event)
            verdict = "passed (wrong)"
        except CanaryFailedError as exc:
            verdict = f"failed: {exc}"
        took_traffic = bench.moment(begun, "canary_step") or begun
        weight_zero = bench.moment(begun, "canary_removed") or time.monotonic()
        detect = weight_zero - took_traffic
        time.sleep(1.5)  # requests in flight when the weight went to 0 are counted too
        failed = load.failed_since(took_traffic)
        bound = 0.10 * args.errors / 100 * detect * rate
        print(f"bad release ({args.errors}% of requests 500): {verdict}")
        print(f"  load: {rate:.0f} requests/s through HAProxy")
        print(f"  requests that failed for users: {failed}")
        print(f"  time to detect (canary taking traffic → weight 0): {detect:.1f}s")
        print(f"  bound the steps imply: 10% x {args.errors}% x {detect:.1f}s x {rate:.0f}/s = {bound:.0f} requests")

        wrong, stuck = 0, 0
        for n in range(args.good):
            t0 = time.monotonic()
            try:
                bench.target.roll_out(bench.plan(sha(100 + n), goods[n], policy(prometheus.url, 1.0)),
                                      bench.on_event)
                outcome = "pass"
                if bench.moment(t0, "canary_promoted") is None:
                    wrong, outcome = wrong + 1, "no canary ran (wrong): " + "; ".join(
                        m for t, m, _ in bench.events if t >= t0)[:500]
            except CanaryFailedError as exc:
                wrong, outcome = wrong + 1, f"FAIL (wrong): {exc}"
            except CanaryStuckError as exc:
                stuck, outcome = stuck + 1, f"stuck (wrong): {exc}"
            print(f"  good release {n + 1:2}/{args.good}: {outcome} in {time.monotonic() - t0:.1f}s", flush=True)
        print(f"good releases: {args.good}, wrong verdicts: {wrong + stuck} ({wrong} failed, {stuck} stuck)")
        print(f"canary: failed_for_users={failed} detect={detect:.1f}s bound={bound:.0f} "
              f"wrong_verdicts={wrong + stuck}/{args.good} (took {time.monotonic() - started:.0f}s)")
        return 0 if wrong + stuck == 0 and verdict.startswith("failed") else 1
    finally:
        if load is not None:
            load.stop()
        bench.cleanup()
        prometheus.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
