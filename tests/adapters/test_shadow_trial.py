"""The shadow replica's bake (bot/culprit/docker_trial.Bake) against a real HTTP server: the
health path and each `culprit.checks` request, judged by the release's own rules."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.culprit.docker_trial import Bake
from bot.domain import HealthPolicy

ANSWERS = {"/health": 200, "/": 200, "/admin": 403, "/boom": 500}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = ANSWERS.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Running:
    """The container handle Bake asks whether the replica still runs."""

    status = "running"

    def reload(self):
        pass


@pytest.fixture(scope="module")
def port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


HEALTH = HealthPolicy(path="/health", interval=0.01, failures=2, bake=0.2, timeout=2)


def test_a_candidate_that_answers_every_check_as_expected_is_good(port):
    report = Bake(HEALTH, port, [("/", 200), ("/admin", 403)], Running()).run(lambda *a, **k: None)
    assert report.healthy and report.probes >= 3 and report.errors_5xx == 0


def test_a_check_answered_with_another_status_makes_it_bad(port):
    report = Bake(HEALTH, port, [("/admin", 200)], Running()).run(lambda *a, **k: None)
    assert not report.healthy and "2 probes in a row failed" in report.reason and "403" in report.reason


def test_5xx_answers_make_it_bad(port):
    report = Bake(HEALTH, port, [("/boom", 500)], Running()).run(lambda *a, **k: None)
    assert not report.healthy and "5xx rate" in report.reason


def test_nothing_listening_is_bad_after_the_start_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    quick = HealthPolicy(path="/health", interval=0.01, failures=2, bake=0.2, timeout=0.3)
    report = Bake(quick, free, [], Running()).run(lambda *a, **k: None)
    assert not report.healthy and report.reason.startswith("not healthy within 0.3s")


@pytest.mark.docker
def test_canary_mode_lets_users_judge_the_candidate_then_takes_it_out(target, plan_for, state_dir, docker_client,
                                                                      traffic):
    """culprit.mode canary on real Docker and HAProxy: v4 (GET / answers 500) takes half the
    requests for its bake and is judged bad by users' 5xx; v2 is judged good; afterwards only the
    live replicas remain in the load balancer, at their weights."""
    from bot.culprit.docker_trial import DockerShadowTrial

    live = plan_for("v1")
    target.roll_out(live, lambda *a, **k: None)
    lb = target.load_balancer(live.service, live.environment, live.listen)
    before = {s.name: lb.weight(s.name) for s in lb.servers()}
    trial = DockerShadowTrial(state_dir, client=docker_client)
    with traffic("/"):
        bad = trial.judge(plan_for("v4"), [], lambda *a, **k: None, weight=50)
        good = trial.judge(plan_for("v2"), [], lambda *a, **k: None, weight=50)
    assert not bad.healthy and "5xx rate" in bad.reason and bad.errors_5xx > 0
    assert good.healthy and good.requests > good.probes  # users' requests reached it too
    assert {s.name: lb.weight(s.name) for s in lb.servers()} == before
    assert not docker_client.containers.list(all=True, filters={"label": "mainline.bisect"})
