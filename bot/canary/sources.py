"""Where the Docker canary's numbers come from: HAProxy's per-server counters, read from a real
Prometheus that scrapes HAProxy's own exporter, or, without one, from HAProxy's runtime stats.

The built-in metrics are computed per version from the servers' series: each side (canary,
baseline) is the set of HAProxy servers that run that version, counted from the moment the
canary started (a snapshot taken then is subtracted), so evidence accumulates over the steps.
  http_5xx_ratio: haproxy_server_http_responses_total{code="5xx"} over all codes, per side;
  latency_p95:    haproxy_server_response_time_average_seconds (HAProxy's average over each
                  server's last 1024 responses), every scrape since the start, per side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from bot.canary.analysis import Observed
from bot.canary.haproxy_stats import counts_of, response_times
from bot.canary.policy import HTTP_5XX_RATIO, LATENCY_P95, CanaryPolicy
from bot.canary.prometheus import Prometheus, PrometheusError, QueryError
from bot.canary.stats import Ratio
from bot.canary.templates import TemplateError, render

Counts = dict[str, tuple[int, int]]  # server -> (5xx, all responses)
RESPONSES = "haproxy_server_http_responses_total"
RESPONSE_TIME = "haproxy_server_response_time_average_seconds"


class Source(Protocol):
    def begin(self, canary: list[str], baseline: list[str]) -> None: ...

    def observe(self, canary: list[str], baseline: list[str]) -> dict[str, Observed]: ...


def ratios(now: Counts, start: Counts, canary: Iterable[str], baseline: Iterable[str]) -> tuple[Ratio, Ratio]:
    def side(names: Iterable[str]) -> Ratio:
        errors = total = 0
        for name in names:
            e, t = now.get(name, (0, 0))
            e0, t0 = start.get(name, (0, 0))
            errors, total = errors + max(0, e - e0), total + max(0, t - t0)
        return Ratio(min(errors, total), total)

    return side(canary), side(baseline)


class PrometheusSource:
    """The built-ins from HAProxy's exporter as Prometheus scraped it, and the user's queries."""

    def __init__(self, prometheus: Prometheus, policy: CanaryPolicy, labels: dict[str, str], sha: str,
                 clock: Callable[[], float] = time.time):
        self.prometheus, self.policy, self.sha, self.clock = prometheus, policy, sha, clock
        self.service, self.environment = labels["mainline_service"], labels["mainline_environment"]
        # Label values are names checked against [a-z0-9_-]: nothing in them can leave the quotes.
        self.selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        self.start: Counts = {}
        self.started = clock()

    def begin(self, canary: list[str], baseline: list[str], wait: float = 15.0) -> None:
        """Snapshot the counters; wait (a little) until Prometheus has scraped the baseline."""
        deadline = time.monotonic() + wait
        self.start = self._counts()
        while not all(name in self.start for name in baseline) and time.monotonic() < deadline:
            time.sleep(0.5)
            self.start = self._counts()
        self.started = self.clock()

    def observe(self, canary: list[str], baseline: list[str]) -> dict[str, Observed]:
        result: dict[str, Observed] = {}
        for spec in self.policy.metrics:
            if spec.builtin == HTTP_5XX_RATIO:
                c, b = ratios(self._counts(), self.start, canary, baseline)
                result[spec.name] = Observed(canary=c, baseline=b)
            elif spec.builtin == LATENCY_P95:
                c, b = ratios(self._counts(), self.start, canary, baseline)
                lat = self._latencies()
                result[spec.name] = Observed(canary=c, baseline=b, canary_latencies=_joined(lat, canary),
                                             baseline_latencies=_joined(lat, baseline))
            elif spec.prometheus:
                result[spec.name] = self._user(spec.prometheus)
        return result

    def _counts(self) -> Counts:
        counts: Counts = {}
        for series in self.prometheus.query(f"sum by (server, code) ({RESPONSES}{{{self.selector}}})"):
            server, value = series.labels.get("server", ""), series.last
            if not server or value != value:  # NaN: no sample
                continue
            errors, total = counts.get(server, (0, 0))
            counts[server] = (errors + (int(value) if series.labels.get("code") == "5xx" else 0), total + int(value))
        return counts

    def _latencies(self) -> dict[str, list[float]]:
        seconds = max(1, int(self.clock() - self.started) + 1)
        found: dict[str, list[float]] = {}
        for series in self.prometheus.query(f"{RESPONSE_TIME}{{{self.selector}}}[{seconds}s]"):
            server = series.labels.get("server", "")
            found.setdefault(server, []).extend(v for t, v in series.samples if t >= self.started and v > 0)
        return found

    def close(self) -> None:
        self.prometheus.close()

    def _user(self, template: str) -> Observed:
        try:
            return Observed(value=self.prometheus.number(render(template, self.service, self.environment, self.sha)))
        except (QueryError, TemplateError) as exc:
            return Observed(error=str(exc)[:200])


class HAProxyStatsSource:
    """The built-ins from HAProxy's runtime stats (`show stat`) when there is no Prometheus."""

    def __init__(self, policy: CanaryPolicy, rows: Callable[[], list[dict[str, str]]]):
        self.policy, self.rows = policy, rows
        self.start: Counts = {}
        self.seen: Counts = {}
        self.latencies: dict[str, list[float]] = {}

    def begin(self, canary: list[str], baseline: list[str]) -> None:
        self.start = self.seen = counts_of(self.rows())
        self.latencies = {}

    def observe(self, canary: list[str], baseline: list[str]) -> dict[str, Observed]:
        rows = self.rows()
        now = counts_of(rows)
        for server, seconds in response_times(rows).items():
            if now.get(server, (0, 0))[1] > self.seen.get(server, (0, 0))[1] and seconds > 0:
                self.latencies.setdefault(server, []).append(seconds)
        self.seen = now
        c, b = ratios(now, self.start, canary, baseline)
        result: dict[str, Observed] = {}
        for spec in self.policy.metrics:
            if spec.builtin == HTTP_5XX_RATIO:
                result[spec.name] = Observed(canary=c, baseline=b)
            elif spec.builtin == LATENCY_P95:
                result[spec.name] = Observed(canary=c, baseline=b,
                                             canary_latencies=_joined(self.latencies, canary),
                                             baseline_latencies=_joined(self.latencies, baseline))
            else:
                result[spec.name] = Observed(error="no Prometheus to ask")
        return result


class WithFallback:
    """Prometheus first; when it does not answer, HAProxy's own counters for the built-ins (an
    infrastructure error is never a fail), said once as an event."""

    def __init__(self, primary: Source | None, fallback: HAProxyStatsSource, say: Callable[[str], None]):
        self.primary, self.fallback, self.say = primary, fallback, say
        self.down = primary is None

    def begin(self, canary: list[str], baseline: list[str]) -> None:
        self.fallback.begin(canary, baseline)
        if self.primary is not None:
            try:
                self.primary.begin(canary, baseline)
            except PrometheusError as exc:
                self._fall(exc)

    def observe(self, canary: list[str], baseline: list[str]) -> dict[str, Observed]:
        backup = self.fallback.observe(canary, baseline)  # read every interval: its latencies accumulate
        if self.primary is not None and not self.down:
            try:
                return self.primary.observe(canary, baseline)
            except PrometheusError as exc:
                self._fall(exc)
        return backup

    def close(self) -> None:
        close = getattr(self.primary, "close", None)
        if close is not None:
            close()

    def _fall(self, exc: Exception) -> None:
        self.down = True
        self.say(f"{exc}; the built-in metrics now come from HAProxy's runtime stats "
                 "(an infrastructure error, not a verdict)")


def _joined(found: dict[str, list[float]], names: Iterable[str]) -> tuple[float, ...]:
    return tuple(v for name in names for v in found.get(name, ()))
