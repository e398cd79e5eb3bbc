"""Where the canary's numbers come from: HAProxy's per-server series in Prometheus, counted from
the canary's start; HAProxy's runtime stats when Prometheus does not answer (said once, and
never a verdict); user queries filled from their template."""

from __future__ import annotations

from bot.canary.analysis import judge_interval
from bot.canary.policy import CanaryPolicy, MetricSpec
from bot.canary.prometheus import PrometheusError, Series
from bot.canary.sources import HAProxyStatsSource, PrometheusSource, WithFallback
from bot.canary.stats import Ratio

POLICY = CanaryPolicy(min_requests=10, metrics=(
    MetricSpec("error-rate", builtin="http_5xx_ratio"),
    MetricSpec("latency", builtin="latency_p95"),
    MetricSpec("checkout", prometheus='sum(errors{version="{{version}}",service="{{service}}"})', max=0)))
LABELS = {"mainline_service": "web", "mainline_environment": "production"}
SHA = "c" * 40


class FakePrometheus:
    """Answers like Prometheus's query API, from counters the test moves on."""

    def __init__(self):
        self.counts = {("new-1", "5xx"): 0, ("new-1", "2xx"): 0, ("old-1", "5xx"): 5, ("old-1", "2xx"): 995}
        self.queries: list[str] = []
        self.down = False

    def query(self, promql):
        self.queries.append(promql)
        if self.down:
            raise PrometheusError("Prometheus at http://127.0.0.1:9 did not answer: ConnectionError")
        if promql.startswith("sum by (server, code)"):
            return [Series({"server": s, "code": c}, ((1.0, float(v)),)) for (s, c), v in self.counts.items()]
        if promql.startswith("haproxy_server_response_time_average_seconds"):
            return [Series({"server": "new-1"}, tuple((1e12 + i, 0.002) for i in range(6))),
                    Series({"server": "old-1"}, tuple((1e12 + i, 0.002) for i in range(6)))]
        return [Series({}, ((1.0, 0.0),))]

    def number(self, promql):
        self.queries.append(promql)
        return 0.0

    def close(self):
        pass


def test_prometheus_counts_each_side_from_the_canarys_start_and_fills_user_queries():
    prom = FakePrometheus()
    source = PrometheusSource(prom, POLICY, LABELS, SHA, clock=lambda: 1e12)
    source.begin(["new-1"], ["old-1"], wait=0)
    prom.counts.update({("new-1", "5xx"): 30, ("new-1", "2xx"): 70, ("old-1", "2xx"): 1895})
    seen = source.observe(["new-1"], ["old-1"])
    assert seen["error-rate"].canary == Ratio(30, 100) and seen["error-rate"].baseline == Ratio(0, 900)
    assert len(seen["latency"].canary_latencies) == 6
    assert seen["checkout"].value == 0.0
    assert 'sum(errors{version="cccccccccccc",service="web"})' in prom.queries
    assert all('mainline_environment="production",mainline_service="web"' in q for q in prom.queries
               if q.startswith(("sum by", "haproxy_server")))
    assert judge_interval(1, 10, seen, POLICY).verdict == "fail"


def test_without_prometheus_haproxys_runtime_stats_carry_the_built_ins_and_it_is_said_once():
    rows = [{"svname": "new-1", "hrsp_2xx": "0", "hrsp_5xx": "0", "rtime": "0"},
            {"svname": "old-1", "hrsp_2xx": "1000", "hrsp_5xx": "0", "rtime": "3"}]
    prom, said = FakePrometheus(), []
    source = WithFallback(PrometheusSource(prom, POLICY, LABELS, SHA), HAProxyStatsSource(POLICY, lambda: rows),
                          said.append)
    source.begin(["new-1"], ["old-1"])
    prom.down = True
    rows[:] = [{"svname": "new-1", "hrsp_2xx": "100", "hrsp_5xx": "0", "rtime": "2"},
               {"svname": "old-1", "hrsp_2xx": "1900", "hrsp_5xx": "0", "rtime": "3"}]
    first = source.observe(["new-1"], ["old-1"])
    second = source.observe(["new-1"], ["old-1"])
    assert first["error-rate"].canary == Ratio(0, 100) and first["error-rate"].baseline == Ratio(0, 900)
    assert first["checkout"].error == "no Prometheus to ask" and second["checkout"].value is None
    assert len(said) == 1 and "not a verdict" in said[0] and "HAProxy's runtime stats" in said[0]
    assert judge_interval(1, 10, first, POLICY).verdict == "inconclusive"  # the user query: never a fail
