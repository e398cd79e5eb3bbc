"""Slash-command acknowledgement latency: p50/p99 of signed POST /slack/commands.

The Slack blueprints are served by a real threaded werkzeug server on 127.0.0.1; answers go
through the SlackReporter to the local Slack stand-in. The pipeline behind them is a small
double that takes `--work` seconds per command, to show the acknowledgement does not wait for it.
Slack wants an answer within 3 s; we report the real figures.

    .venv/bin/python bench/slack_ack.py [--requests 600] [--concurrency 16] [--work 0.2]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import logging
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlencode

import requests
from flask import Flask
from werkzeug.serving import make_server

from bot.config import DeployConfig, Environment
from bot.infra.slack.web import SlackWeb
from bot.notify.slack_reporter import SlackReporter
from handlers.slack import actions as slack_actions
from handlers.slack import commands as slack_commands
from handlers.slack.common import SlackDeps, thread_pool_runner
from sandbox.slack import SlackStandIn

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
USER = "UBENCH"
COMMANDS = [("/deploy", "web"), ("/status", ""), ("/lock", "web bench lock"), ("/history", "web"),
            ("/mainline", "deploy web to production"), ("/help", ""), ("/deploy", "web main to")]


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class SlowPipeline:
    """Enough of the pipeline for the commands above, each taking `work` seconds."""

    def __init__(self, work: float):
        self.work = work
        self.ids = itertools.count(1)
        self.config = DeployConfig(service="web", environments={"production": Environment(deployers=[f"slack:{USER}"])})

    def _slow(self) -> None:
        time.sleep(self.work)

    def request_deploy(self, service, environment, ref, by, *, force=False, reason=None):
        self._slow()
        return {"id": next(self.ids), "service": service, "environment": environment, "sha": "a1b2c3d4",
                "state": "queued"}

    def lock(self, service, environment, by, reason):
        self._slow()

    def status(self, service=None):
        self._slow()
        return [{"service": "web", "environment": "production", "live": None, "head": None, "in_sync": True,
                 "locked": None, "queue": []}]

    def deploys(self, service, limit=20):
        self._slow()
        return []

    def service_config(self, service):
        return self.config

    def record_event(self, service, environment, *, kind, message, by):
        pass


def signed(body: str) -> dict:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--work", type=float, default=0.2, help="seconds the pipeline takes per command")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per request drowns the figures

    standin = SlackStandIn(token=TOKEN).start()
    reporter = SlackReporter(SlackWeb(TOKEN, standin.url), "#deploys")
    deps = SlackDeps(SECRET, SlowPipeline(args.work), reporter, WallClock(), run_later=thread_pool_runner(8))
    app = Flask("mainline-bench")
    app.register_blueprint(slack_commands.blueprint(deps))
    app.register_blueprint(slack_actions.blueprint(deps))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/slack/commands"

    local = threading.local()
    measured: set[str] = set()  # response_url ids of the measured run, not the warm-up

    def one(i: int, record: bool = True) -> tuple[float, int]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        command, text = COMMANDS[i % len(COMMANDS)]
        response_url = standin.response_url()
        if record:
            measured.add(response_url.rsplit("/", 1)[1])
        body = urlencode({"command": command, "text": text, "user_id": USER, "channel_id": "CBENCH",
                          "response_url": response_url})
        started = time.perf_counter()
        answer = session.post(url, data=body, headers=signed(body), timeout=10)
        return time.perf_counter() - started, answer.status_code

    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(lambda i: one(i, record=False), range(min(50, args.requests))))  # warm up
        started = time.perf_counter()
        results = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - started

    latencies = [r[0] for r in results]
    codes = {c: sum(1 for r in results if r[1] == c) for c in {r[1] for r in results}}
    expected = sum(1 for i in range(args.requests) if COMMANDS[i % len(COMMANDS)][0] != "/help"
                   and COMMANDS[i % len(COMMANDS)][1] != "web main to")

    def answered() -> int:
        return sum(len(v) for k, v in standin.responses.items() if k in measured)

    deadline = time.monotonic() + 300
    while answered() < expected and time.monotonic() < deadline:
        time.sleep(0.1)

    ms = [x * 1000 for x in latencies]
    print(f"slash-command ack latency, {args.requests} signed requests, concurrency {args.concurrency}, "
          f"pipeline work {args.work:.2f}s per command, werkzeug threaded server on 127.0.0.1")
    print(f"  status codes: {codes}   throughput: {args.requests / wall:.0f} req/s")
    print(f"  p50 {statistics.median(ms):.1f} ms   p90 {percentile(ms, 90):.1f} ms   p99 {percentile(ms, 99):.1f} ms"
          f"   max {max(ms):.1f} ms   (target p99 < 3000 ms: {'met' if percentile(ms, 99) < 3000 else 'MISSED'})")
    print(f"  follow-ups delivered to response_url: {answered()}/{expected}; "
          f"stand-in violations: {len(standin.violations)}")
    server.shutdown()
    reporter.close()
    standin.stop()


if __name__ == "__main__":
    main()
