"""The canary strategy on one Docker host: one replica of the new version joins HAProxy with a
weight next to the live replicas (the baseline), step by step, judged at every interval.

* Weights go through the runtime API (`set weight`): the baseline's first, then the canary is
  added, weighted, and only then enabled, so it never takes more than its share.
* The numbers come from HAProxy's own exporter as a real Prometheus scraped it (the exporter's
  address is published for Prometheus's file_sd under <state>/prometheus/), else from HAProxy's
  runtime stats (bot/canary/sources.py). Prometheus down is an infrastructure error, not a fail.
* Fail (or a person's abort): the canary's weight goes to 0 at once, it is drained and removed;
  the baseline never stopped serving. CanaryFailedError, a RolloutError: rolled back, reverted.
* Stuck (inconclusive at its limit): the same removal, then CanaryStuckError: no revert.
* Pass at every step: the weights even out and the rolling strategy replaces the rest; the
  engine's bake follows.
A plan without `control` (a rollback restoring the previous release, the reconciler) rolls.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.canary.analysis import FAIL, INCONCLUSIVE, PASS, Tally, judge_interval
from bot.canary.errors import CanaryFailedError, CanaryStuckError
from bot.canary.policy import CanaryPolicy
from bot.canary.prometheus import Prometheus
from bot.canary.sources import HAProxyStatsSource, PrometheusSource, WithFallback
from bot.domain import RolloutPlan
from bot.infra.targets.docker.haproxy import HAProxy
from bot.ports import EventSink

POLL = 0.2  # how often a person's command is looked for while an interval runs


def weights(percent: int, baseline: int, canary: int = 1) -> tuple[int, int]:
    """(canary weight, baseline weight), each 1..256, giving the canary side `percent`% of requests."""
    pairs = [(round(percent * baseline * wb / ((100 - percent) * canary)), wb) for wb in range(1, 257)]
    pairs += [(wc, round(wc * (100 - percent) * canary / (percent * baseline))) for wc in range(1, 257)]
    valid = [(wc, wb) for wc, wb in pairs if 1 <= wc <= 256 and 1 <= wb <= 256]
    return min(valid, key=lambda p: abs(p[0] * canary / (p[0] * canary + p[1] * baseline) - percent / 100))


def publish_scrape_target(state_dir: Path, plan: RolloutPlan, lb: HAProxy) -> dict[str, str] | None:
    """Write the exporter's address where Prometheus's file_sd reads it; the labels to query by."""
    address = lb.metrics_address()
    if address is None:
        return None
    labels = {"mainline_service": plan.service, "mainline_environment": plan.environment}
    folder = Path(state_dir) / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{plan.service}.{plan.environment}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": labels}]))
    os.replace(tmp, path)
    return labels


class DockerCanary:
    def __init__(self, target: Any, plan: RolloutPlan, lb: HAProxy, on_event: EventSink,
                 clock: Callable[[], float] = time.monotonic):
        self.target, self.plan, self.lb, self.on_event, self.clock = target, plan, lb, on_event, clock
        self.policy: CanaryPolicy = plan.canary or CanaryPolicy()
        self.control = plan.control or (lambda: None)
        self.paused = False

    def run(self) -> None:
        plan, lb = self.plan, self.lb
        world = self.target._observe(plan.service, plan.environment, lb)
        baseline = [s.name for s in world.serving(other_than=plan.sha)]
        if self.plan.canary is None or self.plan.control is None or not baseline:
            if self.plan.control is not None and not baseline:
                self.on_event("no release serves yet, so there is nothing to compare a canary with: rolling out",
                              step="canary_skipped")
            self.target._rolling(plan, lb, self.on_event)
            return
        if self.policy.refused:
            raise CanaryStuckError(f"the canary cannot start: {self.policy.refused}")
        canary = self._canary_replica(world)
        source = self._source()
        try:
            source.begin([canary], baseline)
            tally = Tally(self.policy)
            for number, step in enumerate(self.policy.steps, 1):
                self._weigh(step.weight, canary, baseline)
                self.on_event(f"canary step {number}: {canary} takes {step.weight}% of requests for at least "
                              f"{step.pause:g}s", step="canary_step", weight=step.weight, replica=canary)
                self._run_step(number, step.weight, step.pause, canary, baseline, source, tally)
        finally:
            source.close()
        self.on_event(f"the canary passed every step; replacing the other {len(baseline)} replica(s)",
                      step="canary_promoted")
        for name in [canary, *baseline]:
            if lb.server(name) is not None:
                lb.set_weight(name, 1)
        self.target._rolling(plan, lb, self.on_event)

    # -- one step ----------------------------------------------------------------------------

    def _run_step(self, number: int, weight: int, pause: float, canary: str, baseline: list[str],
                  source: WithFallback, tally: Tally) -> None:
        ends = self.clock() + pause
        while True:
            action = self._wait(self.policy.interval)
            if action == "abort":
                self._remove(canary, baseline)
                raise CanaryFailedError(f"a person aborted the canary at step {number} ({weight}%)")
            if action == "promote":
                self.paused = False
                self.on_event(f"a person promoted the canary past step {number}", step="canary_command",
                              action="promote")
                return
            if action == "pause" and not self.paused:
                self.paused = True
                self.on_event(f"canary paused at step {number} ({weight}%): `mainline canary promote` goes on, "
                              "`abort` stops it", kind="canary", notify=True, step=number, verdict="paused",
                              weight=weight, metrics=[])
            if self.paused:
                continue
            verdict = judge_interval(number, weight, source.observe([canary], baseline), self.policy)
            decision = tally.add(verdict)
            self.on_event(verdict.summary(), kind="canary", notify=decision != PASS, **verdict.as_data())
            if decision == FAIL:
                self._remove(canary, baseline)
                raise CanaryFailedError(f"canary failed at step {number} ({weight}%): "
                                        + "; ".join(m.line for m in verdict.metrics if m.result == FAIL))
            if decision == INCONCLUSIVE:
                self._remove(canary, baseline)
                raise CanaryStuckError(
                    f"the canary could not be judged after {tally.inconclusive_in_a_row} inconclusive intervals "
                    f"at step {number} ({weight}%): {verdict.summary()}; nothing is reverted, the previous "
                    "release still serves")
            if verdict.verdict == PASS and self.clock() >= ends:
                return

    def _wait(self, seconds: float) -> str | None:
        """Sleep one interval, unless a person's command arrives first."""
        ends = self.clock() + seconds
        while True:
            action = self.control()
            if action in ("abort", "promote", "pause"):
                return action
            if self.clock() >= ends:
                return None
            time.sleep(min(POLL, max(0.0, ends - self.clock())))

    # -- replicas and weights ---------------------------------------------------------------------

    def _canary_replica(self, world: Any) -> str:
        """The canary's server: one of the new version already serving (a re-run), or a new one,
        healthy, weighted to 0 before it is enabled."""
        serving = world.serving(sha=self.plan.sha)
        if serving:
            return str(serving[0].name)
        inst = self.target._start(self.plan, world, self.on_event)
        self.target._await_healthy(self.plan, inst, self.on_event, remove_on_failure=True)
        self.lb.add(inst.name, inst.address)
        self.lb.set_weight(inst.name, 0)
        self.lb.enable(inst.name)
        self.on_event(f"added canary {inst.name} ({inst.address}) to the load balancer at weight 0",
                      step="lb_added", replica=inst.name, address=inst.address)
        return str(inst.name)

    def _weigh(self, percent: int, canary: str, baseline: list[str]) -> None:
        wc, wb = weights(percent, len(baseline))
        for name in baseline:
            self.lb.set_weight(name, wb)
        self.lb.set_weight(canary, wc)

    def _remove(self, canary: str, baseline: list[str]) -> None:
        self.lb.set_weight(canary, 0)
        self.on_event(f"canary {canary} set to weight 0: the baseline takes every request", step="canary_removed",
                      replica=canary)
        for name in baseline:
            self.lb.set_weight(name, 1)
        world = self.target._observe(self.plan.service, self.plan.environment, self.lb)
        self.target._retire(self.lb, canary, world.instance(canary), self.on_event)

    def _source(self) -> WithFallback:
        labels = publish_scrape_target(self.target.state_dir, self.plan, self.lb)
        fallback = HAProxyStatsSource(self.policy, self.lb.stat_rows)
        primary = None
        if self.policy.prometheus_url and labels is not None:
            primary = PrometheusSource(Prometheus(self.policy.prometheus_url), self.policy, labels, self.plan.sha)
        elif self.policy.prometheus_url:
            self.on_event("this load balancer was started without its Prometheus exporter; the built-in metrics "
                          "come from HAProxy's runtime stats", step="canary_source")

        def say(message: str) -> None:
            self.on_event(message, step="canary_source")

        return WithFallback(primary, fallback, say)
