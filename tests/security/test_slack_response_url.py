"""Found beyond issue 9's list: a signed Slack request names the `response_url` the bot POSTs
its answer to. Only Slack's hooks (or the configured Slack host) may be answered; any other
address, such as a service on the bot's own network, gets nothing."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from flask import Flask

from bot.infra.slack.web import SlackWeb
from bot.notify.slack_reporter import SlackReporter
from handlers.slack import commands as slack_commands
from handlers.slack.common import SlackDeps
from sandbox.slack import SlackStandIn

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-token"
USER = "U0DEPLOYER"


class _Pipeline:
    def status(self, service=None):
        return []


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _sign(body: str) -> dict:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def listener():
    """An HTTP service on 127.0.0.1 that records every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


def test_a_response_url_outside_slack_is_never_posted_to(listener, caplog):
    port, hits = listener
    with SlackStandIn(token=TOKEN) as standin:
        chat = SlackReporter(SlackWeb(TOKEN, standin.url), "#deploys", retry_pause=0.05)
        deps = SlackDeps(signing_secret=SECRET, pipeline=_Pipeline(), chat=chat, clock=_Clock(),
                         run_later=lambda job: job(), admins=frozenset())
        app = Flask("ssrf")
        app.register_blueprint(slack_commands.blueprint(deps))
        body = urlencode({"team_id": "T1", "channel_id": "C1", "user_id": USER, "user_name": "someone",
                          "command": "/status", "text": "", "trigger_id": "1.2.3",
                          "response_url": f"http://127.0.0.1:{port}/internal/admin"})
        caplog.errors_expected = True  # the refused answer is logged
        response = app.test_client().post("/slack/commands", data=body, headers=_sign(body))
        time.sleep(0.3)
        chat.close()

    assert response.status_code == 200
    assert hits == []
    assert SlackWeb(TOKEN, "http://127.0.0.1:1/api/").allows_response_url("https://hooks.slack.com/commands/T/1/x")
    assert not SlackWeb(TOKEN, "https://slack.com/api/").allows_response_url("https://hooks.slack.com.evil/x")
    assert not SlackWeb(TOKEN, "https://slack.com/api/").allows_response_url(f"http://127.0.0.1:{port}/x")
