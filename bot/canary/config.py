"""The `canary:` and `prometheus:` blocks of an environment in `.github/deploy.yml`.

Hostile input like the rest of the file: weights, durations, counts and thresholds are
bounded, PromQL templates are checked (bot/canary/templates.py), and the Prometheus URL must be
a plain http(s) URL. Whether Mainline may talk to that URL is the operator's decision, not the
repository's: it must also be listed in MAINLINE_PROMETHEUS_URLS (checked when the canary runs).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.canary.policy import CanaryPolicy, CanaryStep, MetricSpec
from bot.canary.templates import TemplateError, check_template
from bot.config_values import CHECK_NAME, DurationRange, check_duration, parse_duration

STEP_PAUSE = DurationRange(0.0, 24 * 3600.0)
INTERVAL = DurationRange(0.1, 600.0)
PROMETHEUS_URL_RE = r"^https?://[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?/?$|^https?://\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?/?$"
_PROMETHEUS_URL = re.compile(PROMETHEUS_URL_RE)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Step(_Model):
    weight: int = Field(ge=1, le=99, description="percent of requests the canary takes")
    pause: str | float = Field(default="60s", description="how long the step lasts before it is promoted; at most 24h")

    @field_validator("pause")
    @classmethod
    def _pause(cls, value: Any) -> Any:
        return check_duration(value, STEP_PAUSE)


class Metric(_Model):
    name: CHECK_NAME
    builtin: Literal["http_5xx_ratio", "latency_p95"] | None = None
    prometheus: str | None = Field(default=None, max_length=1000,
                                   description="PromQL returning one number; {{service}} {{environment}} "
                                               "{{version}} {{sha}} are filled in")
    compare: Literal["baseline"] | None = None
    max_increase: float = Field(default=0.01, ge=0, le=1, description="http_5xx_ratio: allowed increase over "
                                                                      "the baseline (0.01 = one point)")
    max_ratio: float = Field(default=1.25, ge=1, le=100, description="latency_p95: allowed canary/baseline ratio")
    max: float | None = Field(default=None, ge=-1e15, le=1e15)
    min: float | None = Field(default=None, ge=-1e15, le=1e15)

    @field_validator("prometheus")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            return check_template(value)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _one_source(self) -> Metric:
        if (self.builtin is None) == (self.prometheus is None):
            raise ValueError("a metric has either `builtin:` or `prometheus:`, not both and not neither")
        if self.prometheus is not None and self.max is None and self.min is None:
            raise ValueError("a `prometheus:` metric needs `max:` or `min:`")
        return self

    def spec(self) -> MetricSpec:
        return MetricSpec(self.name, builtin=self.builtin, prometheus=self.prometheus, max_increase=self.max_increase,
                          max_ratio=self.max_ratio, max=self.max, min=self.min)


def _default_metrics() -> list[Metric]:
    return [Metric(name="error-rate", builtin="http_5xx_ratio", compare="baseline")]


class Analysis(_Model):
    interval: str | float = Field(default="10s", description="how often each metric is judged; 0.1s to 10m")
    min_requests: int = Field(default=100, ge=1, le=10_000_000,
                              description="fewer requests on a side is inconclusive, never a pass")
    failure_limit: int = Field(default=1, ge=1, le=100, description="failed intervals that end the canary")
    inconclusive_limit: int = Field(default=3, ge=1, le=100,
                                    description="inconclusive intervals in a row that end it without a revert")
    metrics: list[Metric] = Field(default_factory=_default_metrics, min_length=1, max_length=20)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        return check_duration(value, INTERVAL)

    @model_validator(mode="after")
    def _unique(self) -> Analysis:
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("two metrics have the same name")
        return self


def _default_steps() -> list[Step]:
    return [Step(weight=10, pause="60s"), Step(weight=50, pause="60s")]


class Canary(_Model):
    steps: list[Step] = Field(default_factory=_default_steps, min_length=1, max_length=10)
    analysis: Analysis = Field(default_factory=Analysis)

    @model_validator(mode="after")
    def _rising(self) -> Canary:
        weights = [s.weight for s in self.steps]
        if weights != sorted(set(weights)):
            raise ValueError("step weights must rise: each step gives the canary more traffic")
        return self


class Prometheus(_Model):
    url: str = Field(max_length=300, description="http(s)://host[:port] of the Prometheus server; Mainline only "
                                                 "talks to URLs also listed in MAINLINE_PROMETHEUS_URLS",
                     json_schema_extra={"pattern": PROMETHEUS_URL_RE})

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _PROMETHEUS_URL.fullmatch(value):
            raise ValueError("the Prometheus URL is http(s)://host[:port], with no user, path or query")
        return value.rstrip("/")


def policy(canary: Canary | None, prometheus: Prometheus | None) -> CanaryPolicy:
    canary = canary or Canary()
    a = canary.analysis
    return CanaryPolicy(steps=tuple(CanaryStep(s.weight, parse_duration(s.pause)) for s in canary.steps),
                        interval=parse_duration(a.interval), min_requests=a.min_requests,
                        failure_limit=a.failure_limit, inconclusive_limit=a.inconclusive_limit,
                        metrics=tuple(m.spec() for m in a.metrics),
                        prometheus_url=prometheus.url if prometheus else None)


def check_canary(strategy: str, canary: Canary | None, prometheus: Prometheus | None) -> None:
    """An environment's canary settings hang together: `canary:` only with `strategy: canary`,
    and user queries only with a Prometheus to ask."""
    if canary is not None and strategy != "canary":
        raise ValueError("`canary:` needs `strategy: canary`")
    metrics = (canary or Canary()).analysis.metrics
    if prometheus is None and any(m.prometheus for m in metrics):
        raise ValueError("a `prometheus:` metric needs `prometheus: {url: ...}` in the environment")


def canary_policy(env: Any, allowed_urls: tuple[str, ...]) -> CanaryPolicy | None:
    """The policy of an environment whose strategy is canary (None otherwise); a Prometheus URL
    the operator has not allowed is kept out, and the refusal said when the canary starts."""
    if env.strategy != "canary":
        return None
    result = policy(env.canary, env.prometheus)
    if result.prometheus_url and result.prometheus_url not in allowed_urls:
        return replace(result, prometheus_url=None,
                       refused=f"prometheus url {result.prometheus_url} is not in MAINLINE_PROMETHEUS_URLS "
                               f"(allowed: {', '.join(allowed_urls) or 'none'})")
    return result
