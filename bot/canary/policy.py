"""What a canary roll-out is asked to do, as plain values: the steps, the analysis, the metrics.

Built from the validated `canary:` block of the repository's config (bot/canary/config.py) and
handed to a target inside the RolloutPlan. No I/O here, so the Docker and ECS targets share it.
"""

from __future__ import annotations

from dataclasses import dataclass

HTTP_5XX_RATIO = "http_5xx_ratio"
LATENCY_P95 = "latency_p95"
BUILTINS = (HTTP_5XX_RATIO, LATENCY_P95)


@dataclass(frozen=True)
class CanaryStep:
    weight: int  # percent of requests the canary takes, 1..100
    pause: float  # seconds the step lasts before it may be promoted


@dataclass(frozen=True)
class MetricSpec:
    """One metric: a built-in compared with the baseline, or a PromQL template with bounds."""

    name: str
    builtin: str | None = None  # http_5xx_ratio | latency_p95
    prometheus: str | None = None  # a template with {{service}} {{environment}} {{version}} {{sha}}
    max_increase: float = 0.01  # http_5xx_ratio: canary ratio may exceed the baseline's by this much
    max_ratio: float = 1.25  # latency_p95: canary p95 may be this many times the baseline's
    max: float | None = None  # prometheus: the value must be <= max
    min: float | None = None  # prometheus: the value must be >= min


DEFAULT_METRICS = (MetricSpec("error-rate", builtin=HTTP_5XX_RATIO),)


@dataclass(frozen=True)
class CanaryPolicy:
    steps: tuple[CanaryStep, ...] = (CanaryStep(10, 60.0), CanaryStep(50, 60.0))
    interval: float = 10.0
    min_requests: int = 100  # per side and metric: fewer is inconclusive, never a pass
    failure_limit: int = 1  # failed intervals that end the canary
    inconclusive_limit: int = 3  # inconclusive intervals in a row that end it, without a revert
    metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS
    alpha: float = 0.01  # significance a difference needs before it fails the canary
    prometheus_url: str | None = None  # None: the built-in metrics come from HAProxy's own counters
    refused: str = ""  # why the configured Prometheus may not be asked (the operator's allow-list)
