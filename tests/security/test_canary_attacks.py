"""A repository's canary settings are hostile: its PromQL templates cannot smuggle a value out
of its quotes, its Prometheus URL cannot point Mainline anywhere the operator did not allow,
its weights, steps and intervals are bounded, and a Prometheus that misbehaves (redirects,
huge or garbled answers) is an infrastructure error, never a verdict."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.canary.config import canary_policy
from bot.canary.prometheus import Prometheus, PrometheusError, QueryError
from bot.canary.templates import TemplateError, render
from bot.config import ConfigError, parse_config

BASE = """\
service: web
environments:
  production:
    strategy: canary
{extra}"""


def config(extra: str):
    return parse_config(BASE.format(extra=extra))


def problem(extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        config(extra)
    return str(caught.value)


@pytest.mark.parametrize(("extra", "says"), [
    ("    canary: {analysis: {metrics: [{name: x, max: 0, prometheus: 'up{job=\"{{job}}\"}'}]}}\n"
     "    prometheus: {url: 'http://127.0.0.1:9090'}\n", "unknown placeholder {{job}}"),
    ("    canary: {analysis: {metrics: [{name: x, max: 0, prometheus: 'up{a=\"{{ service }\"}'}]}}\n"
     "    prometheus: {url: 'http://127.0.0.1:9090'}\n", "not a placeholder"),
    ("    canary: {analysis: {metrics: [{name: x, max: 0, prometheus: \"up\\n{{service}}\"}]}}\n"
     "    prometheus: {url: 'http://127.0.0.1:9090'}\n", "control character"),
    ("    canary: {analysis: {metrics: [{name: x, max: 0, prometheus: up}]}}\n", "needs `prometheus: {url: ...}`"),
    ("    canary: {analysis: {metrics: [{name: x, prometheus: up}]}}\n"
     "    prometheus: {url: 'http://127.0.0.1:9090'}\n", "needs `max:` or `min:`"),
    ("    prometheus: {url: 'http://user:pw@127.0.0.1:9090'}\n", "no user, path or query"),
    ("    prometheus: {url: 'http://127.0.0.1:9090/api/v1/admin?x=1'}\n", "no user, path or query"),
    ("    prometheus: {url: 'file:///etc/passwd'}\n", "no user, path or query"),
    ("    canary: {steps: [{weight: 100}]}\n", "less than or equal to 99"),
    ("    canary: {steps: [{weight: 0}]}\n", "greater than or equal to 1"),
    ("    canary: {steps: [{weight: 50}, {weight: 10}]}\n", "step weights must rise"),
    ("    canary: {steps: [" + ", ".join(f"{{weight: {w}}}" for w in range(1, 12)) + "]}\n", "at most 10 items"),
    ("    canary: {analysis: {interval: 0s}}\n", "interval"),
    ("    canary: {analysis: {min_requests: 0}}\n", "greater than or equal to 1"),
    ("    canary: {steps: [{weight: 10, pause: 48h}]}\n", "pause"),
])
def test_hostile_canary_settings_are_refused_naming_their_line(extra, says):
    message = problem(extra)
    assert says in message and "line " in message, message


def test_canary_settings_need_the_canary_strategy():
    text = BASE.format(extra="    canary: {steps: [{weight: 10}]}\n").replace("strategy: canary", "strategy: rolling")
    with pytest.raises(ConfigError, match="needs `strategy: canary`"):
        parse_config(text)


def test_a_prometheus_the_operator_did_not_allow_is_never_asked():
    env = config("    prometheus: {url: 'http://169.254.169.254'}\n").environments["production"]
    policy = canary_policy(env, ("http://127.0.0.1:9090",))
    assert policy is not None and policy.prometheus_url is None
    assert "http://169.254.169.254 is not in MAINLINE_PROMETHEUS_URLS" in policy.refused
    allowed = canary_policy(config("    prometheus: {url: 'http://127.0.0.1:9090/'}\n").environments["production"],
                            ("http://127.0.0.1:9090",))
    assert allowed is not None and allowed.prometheus_url == "http://127.0.0.1:9090" and not allowed.refused


@pytest.mark.parametrize(("service", "environment", "sha"), [
    ('web"} or vector(1) #', "production", "a" * 40),
    ("web", "prod\"}|", "a" * 40),
    ("web", "production", "a" * 39 + '"'),
    ("web", "production", "{{service}}" + "a" * 29),
])
def test_values_that_would_leave_their_quotes_are_never_put_into_a_query(service, environment, sha):
    with pytest.raises(TemplateError):
        render('sum(x{service="{{service}}",env="{{environment}}",sha="{{sha}}",v="{{version}}"})',
               service, environment, sha)


def test_checked_values_fill_the_template():
    assert render('x{s="{{service}}",e="{{ environment }}",v="{{version}}"}', "web", "production", "ab" * 20) \
        == 'x{s="web",e="production",v="abababababab"}'


class _Hostile(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path
        if path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        if path.startswith("/huge"):
            body = b'{"status":"success","data":{"resultType":"vector","result":[' + b" " * (5 * 1024 * 1024) + b"]}}"
        elif path.startswith("/garbled"):
            body = b"<html>not prometheus</html>"
        elif path.startswith("/refuses"):
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"status":"error","errorType":"bad_data","error":"parse error"}')
            return
        else:
            body = (b'{"status":"success","data":{"resultType":"vector","result":['
                    b'{"metric":{"a":"1"},"value":[1,"2"]},{"metric":{"a":"2"},"value":[1,"3"]}]}}')
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_misbehaving_prometheus_is_an_infrastructure_error_never_a_verdict(hostile):
    class At(Prometheus):
        def __init__(self, prefix):
            super().__init__(hostile, timeout=3)
            self.prefix = prefix

        def _get(self, path, params):
            return super()._get(self.prefix + path, params)

    with pytest.raises(PrometheusError, match="answered 302"):
        At("/redirect").query("up")  # not followed to the metadata service
    with pytest.raises(QueryError, match="larger than 4 MB"):
        At("/huge").query("up")
    with pytest.raises(PrometheusError):
        At("/garbled").query("up")
    with pytest.raises(QueryError, match="refused the query: parse error"):
        At("/refuses").query("up{")
    with pytest.raises(QueryError, match="2 series, not one number"):
        At("/ok").number("up")
    with pytest.raises(PrometheusError, match="did not answer"):
        Prometheus("http://127.0.0.1:9", timeout=1).query("up")


ISSUE_EXAMPLE = """\
service: webapp
environments:
  production:
    strategy: canary
    canary:
      steps: [{weight: 10, pause: 60s}, {weight: 50, pause: 60s}]
      analysis:
        interval: 10s
        min_requests: 100
        failure_limit: 1
        inconclusive_limit: 3
        metrics:
          - {name: error-rate, builtin: http_5xx_ratio, compare: baseline, max_increase: 0.01}
          - {name: latency-p95, builtin: latency_p95, compare: baseline, max_ratio: 1.25}
          - {name: checkout-errors, max: 0,
             prometheus: 'sum(increase(app_checkout_errors_total{version="{{version}}"}[1m]))'}
    prometheus: {url: "http://127.0.0.1:9090"}
"""


def test_config_validate_and_the_schema_know_the_canary_keys(tmp_path, mainline):
    import json

    import jsonschema
    import yaml

    good = tmp_path / "deploy.yml"
    good.write_text(ISSUE_EXAMPLE)
    assert mainline("config", "validate", str(good)).exit_code == 0
    schema = json.loads(mainline("config", "schema").output)
    jsonschema.validate(yaml.safe_load(ISSUE_EXAMPLE), schema)
    bad = tmp_path / "bad.yml"
    bad.write_text(ISSUE_EXAMPLE.replace("weight: 50", "weight: 5"))
    result = mainline("config", "validate", str(bad))
    assert result.exit_code == 1 and ":5: " in result.output and "step weights must rise" in result.output
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(ISSUE_EXAMPLE.replace("weight: 10", "weight: 100")), schema)


def test_a_merge_naming_a_prometheus_the_operator_did_not_allow_fails_its_config_check(tmp_path):
    """Said on the merge's `mainline/config` check, naming the line, before anything deploys
    (not first when the canary would start)."""
    from bot.domain import DeployRequest
    from tests.engine.world import CLONE, CONFIG, REPO, World

    world = World(tmp_path)
    world.ship(world.root)
    canary = CONFIG.replace("    replicas: 2\n", "    replicas: 2\n    strategy: canary\n"
                                                "    prometheus: {url: 'http://169.254.169.254:9090'}\n")
    sha = world.merge({".github/deploy.yml": canary}, "Canary against metadata")

    assert world.pipeline.request(DeployRequest(REPO, CLONE, "refs/heads/master", sha)) == []
    refusal = world.chat.notices[-1]
    assert (refusal.sha, refusal.state, refusal.data["gate"]) == (sha, "failed", "config")
    assert "line 9: environments.production.prometheus.url" in refusal.data["reason"], refusal.data
    assert "is not in MAINLINE_PROMETHEUS_URLS" in refusal.data["reason"]
    assert world.live() == world.root
