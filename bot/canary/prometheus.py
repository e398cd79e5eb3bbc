"""A small client for Prometheus's HTTP query API (`GET /api/v1/query`).

Only what the canary needs: an instant query, answered as series of (timestamp, value) samples
(a range selector such as `x[5m]` gives every scraped sample in the window). A Prometheus that
does not answer, answers 5xx or garbage is an infrastructure error (PrometheusError, transient):
it says nothing about the release. A query Prometheus refuses (400/422: the repository's
PromQL) is a QueryError, which makes that metric inconclusive. Bounded: a timeout on every
call, Prometheus's own `timeout=` on the query, no redirects, at most MAX_BYTES read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import requests

from bot.errors import TransientError

MAX_BYTES = 4 * 1024 * 1024
TIMEOUT = 5.0


class PrometheusError(TransientError):
    """Prometheus could not be asked: down, slow, or an answer that is not its API's."""


class QueryError(ValueError):
    """Prometheus refused the query, or it does not give the one number a metric needs."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    samples: tuple[tuple[float, float], ...]  # (unix time, value)

    @property
    def last(self) -> float:
        return self.samples[-1][1] if self.samples else math.nan


class Prometheus:
    def __init__(self, url: str, timeout: float = TIMEOUT, session: requests.Session | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def query(self, promql: str) -> list[Series]:
        """Every series the query returns, with its samples (one for an instant vector)."""
        data = self._get("/api/v1/query", {"query": promql, "timeout": f"{self.timeout:g}s"})
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return [Series({}, (_sample(result),))]
        if kind not in ("vector", "matrix") or not isinstance(result, list):
            raise PrometheusError(f"Prometheus at {self.url} answered an unexpected result type {str(kind)[:20]!r}")
        series = []
        for item in result:
            labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            raw = item.get("values") if kind == "matrix" else [item.get("value")]
            series.append(Series(labels, tuple(_sample(s) for s in raw or ())))
        return series

    def number(self, promql: str) -> float | None:
        """The one number a metric query gives; None when it returns no series."""
        series = self.query(promql)
        if not series:
            return None
        if len(series) > 1 or len(series[0].samples) != 1:
            raise QueryError(f"the query returns {len(series)} series, not one number: wrap it in sum(...)")
        value = series[0].last
        return None if math.isnan(value) else value

    def close(self) -> None:
        self.session.close()

    def ready(self) -> bool:
        try:
            return self.session.get(f"{self.url}/-/ready", timeout=self.timeout, allow_redirects=False).ok
        except requests.RequestException:
            return False

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            with self.session.get(f"{self.url}{path}", params=params, timeout=self.timeout, stream=True,
                                  allow_redirects=False) as answer:
                body = answer.raw.read(MAX_BYTES + 1, decode_content=True)
                status = answer.status_code
        except requests.RequestException as exc:
            raise PrometheusError(f"Prometheus at {self.url} did not answer: {type(exc).__name__}") from exc
        if len(body) > MAX_BYTES:
            raise QueryError(f"the answer is larger than {MAX_BYTES // 1024 // 1024} MB: narrow the query")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if status in (400, 422) and isinstance(doc, dict):
            raise QueryError(f"Prometheus refused the query: {str(doc.get('error'))[:300]}")
        if status != 200 or not isinstance(doc, dict) or doc.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url} answered {status}")
        data = doc.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"Prometheus at {self.url} answered without data")
        return data


def _sample(raw: Any) -> tuple[float, float]:
    try:
        return float(raw[0]), float(raw[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise PrometheusError(f"not a Prometheus sample: {str(raw)[:60]}") from exc
