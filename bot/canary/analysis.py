"""Judge a canary: each metric, each interval, gives pass, fail or inconclusive.

Pure functions of what was measured (an `Observed` per metric) and the policy, so the Docker
target (HAProxy + Prometheus) and the ECS target (ALB + CloudWatch) share one judge. Rules:

* too little traffic (fewer than `min_requests` on either side) is inconclusive, never a pass;
* a comparison with the baseline fails only when the difference is both larger than the
  allowed margin and statistically significant (p < alpha); larger but not yet significant
  is inconclusive, so more traffic decides;
* an interval fails when any metric fails, is inconclusive when any is, and passes otherwise;
* `Tally` ends the canary at `failure_limit` failed intervals (a fail: roll back and revert)
  or at `inconclusive_limit` inconclusive intervals in a row (stuck: no revert, say so).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.canary.policy import HTTP_5XX_RATIO, LATENCY_P95, CanaryPolicy, MetricSpec
from bot.canary.stats import Ratio, format_p, latency_p_value, quantile, ratio_p_value

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# Latency samples (one per scrape or per request) needed on each side before comparing.
MIN_LATENCY_SAMPLES = 5


@dataclass(frozen=True)
class Observed:
    """What a metric source measured for one metric since the analysis started."""

    canary: Ratio | None = None  # http_5xx_ratio: 5xx out of all responses, per side
    baseline: Ratio | None = None
    canary_latencies: tuple[float, ...] = ()  # latency_p95: seconds, per side
    baseline_latencies: tuple[float, ...] = ()
    value: float | None = None  # a user query's value; None when it returned nothing
    error: str = ""  # why nothing could be measured (the query refused, Prometheus down)


@dataclass(frozen=True)
class MetricResult:
    name: str
    canary: str
    baseline: str
    p_value: float | None
    result: str
    line: str  # what a person reads: "canary 5xx 4.1% (37/900) vs baseline 0.2% (2/950), p < 0.001: fail"

    def as_data(self) -> dict[str, Any]:
        p = None if self.p_value is None else round(self.p_value, 6)
        return {"name": self.name, "canary": self.canary, "baseline": self.baseline, "p_value": p,
                "result": self.result, "line": self.line}


@dataclass(frozen=True)
class Verdict:
    """One interval's judgement over every metric."""

    step: int  # 1-based
    weight: int
    metrics: tuple[MetricResult, ...]

    @property
    def verdict(self) -> str:
        results = {m.result for m in self.metrics}
        return FAIL if FAIL in results else INCONCLUSIVE if INCONCLUSIVE in results or not results else PASS

    def as_data(self) -> dict[str, Any]:
        return {"step": self.step, "weight": self.weight, "verdict": self.verdict,
                "metrics": [m.as_data() for m in self.metrics]}

    def summary(self) -> str:
        lines = "; ".join(m.line for m in self.metrics) or "no metric"
        return f"canary step {self.step} at {self.weight}%: {self.verdict}: {lines}"


def judge(spec: MetricSpec, seen: Observed, policy: CanaryPolicy) -> MetricResult:
    if spec.builtin == HTTP_5XX_RATIO:
        return judge_error_ratio(spec.name, seen.canary, seen.baseline, spec.max_increase, policy)
    if spec.builtin == LATENCY_P95:
        return judge_latency(spec.name, seen, spec.max_ratio, policy)
    return judge_bounds(spec, seen.value, seen.error)


def judge_interval(step: int, weight: int, observed: dict[str, Observed], policy: CanaryPolicy) -> Verdict:
    """Judge every metric of the policy; a metric nothing was measured for is inconclusive."""
    return Verdict(step, weight, tuple(judge(spec, observed.get(spec.name, Observed()), policy)
                                       for spec in policy.metrics))


def judge_error_ratio(name: str, canary: Ratio | None, baseline: Ratio | None, max_increase: float,
                      policy: CanaryPolicy) -> MetricResult:
    canary, baseline = canary or Ratio(0, 0), baseline or Ratio(0, 0)
    head = f"canary 5xx {canary} vs baseline {baseline}"
    if min(canary.total, baseline.total) < policy.min_requests:
        return MetricResult(name, str(canary), str(baseline), None, INCONCLUSIVE,
                            f"{head}: inconclusive, fewer than {policy.min_requests} requests on a side")
    p = ratio_p_value(canary, baseline)
    worse = canary.rate - baseline.rate > max_increase
    result = (FAIL if p < policy.alpha else INCONCLUSIVE) if worse else PASS
    return MetricResult(name, str(canary), str(baseline), p, result, f"{head}, {format_p(p)}: {result}")


def judge_latency(name: str, seen: Observed, max_ratio: float, policy: CanaryPolicy) -> MetricResult:
    canary, baseline = seen.canary_latencies, seen.baseline_latencies
    c95, b95 = quantile(canary, 0.95), quantile(baseline, 0.95)
    mine, theirs = f"{c95 * 1000:.0f}ms (n={len(canary)})", f"{b95 * 1000:.0f}ms (n={len(baseline)})"
    head = f"canary p95 {mine} vs baseline {theirs}"
    few_requests = seen.canary is not None and min(seen.canary.total,
                                                   (seen.baseline or seen.canary).total) < policy.min_requests
    if min(len(canary), len(baseline)) < MIN_LATENCY_SAMPLES or few_requests:
        return MetricResult(name, mine, theirs, None, INCONCLUSIVE, f"{head}: inconclusive, too few samples")
    p = latency_p_value(canary, baseline)
    worse = c95 > b95 * max_ratio
    result = (FAIL if p < policy.alpha else INCONCLUSIVE) if worse else PASS
    return MetricResult(name, mine, theirs, p, result, f"{head}, {format_p(p)}: {result}")


def judge_bounds(spec: MetricSpec, value: float | None, error: str = "") -> MetricResult:
    bounds = " and ".join(b for b in (f"max {spec.max:g}" if spec.max is not None else "",
                                       f"min {spec.min:g}" if spec.min is not None else "") if b)
    if value is None:
        return MetricResult(spec.name, "no data", bounds, None, INCONCLUSIVE,
                            f"{spec.name}: {error or 'the query returned nothing'} ({bounds}): inconclusive")
    ok = (spec.max is None or value <= spec.max) and (spec.min is None or value >= spec.min)
    result = PASS if ok else FAIL
    return MetricResult(spec.name, f"{value:g}", bounds, None, result, f"{spec.name} {value:g} ({bounds}): {result}")


@dataclass
class Tally:
    """The canary's memory across intervals: how many failed, how many in a row said nothing."""

    policy: CanaryPolicy
    failures: int = 0
    inconclusive_in_a_row: int = 0
    verdicts: list[Verdict] = field(default_factory=list)

    def add(self, verdict: Verdict) -> str:
        """Record one interval; answer FAIL, INCONCLUSIVE (stuck: give up) or PASS (go on)."""
        self.verdicts.append(verdict)
        if verdict.verdict == FAIL:
            self.failures += 1
            self.inconclusive_in_a_row = 0
        elif verdict.verdict == INCONCLUSIVE:
            self.inconclusive_in_a_row += 1
        else:
            self.inconclusive_in_a_row = 0
        if self.failures >= self.policy.failure_limit:
            return FAIL
        if self.inconclusive_in_a_row >= self.policy.inconclusive_limit:
            return INCONCLUSIVE
        return PASS


def lines(data: dict[str, Any] | None) -> list[str]:
    """The verdict lines of a recorded `canary` event, for PR comments and Slack cards."""
    metrics: Iterable[Any] = (data or {}).get("metrics") or ()
    return [str(m.get("line") or "")[:300] for m in metrics if isinstance(m, dict) and m.get("line")]


def worst(verdicts: Sequence[Verdict]) -> Verdict | None:
    """The verdict to show: the last failed one, else the last one."""
    failed = [v for v in verdicts if v.verdict == FAIL]
    chosen = failed or list(verdicts)
    return chosen[-1] if chosen else None
