"""Test kit for the Slack side: a pipeline double, a fixed clock, signed requests."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from bot.config import parse_config
from bot.errors import MainlineError, NotFoundError
from bot.retry import policy
from sandbox.slack import SlackStandIn

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token-never-logged"
DEPLOYER = "U2CERLKJA"  # listed in every environment of `web`
STAGER = "USTAGE01"  # may deploy web to staging only
STRANGER = "USTRANGER"

WEB = f"""
service: web
environments:
  production:
    auto_deploy: true
    deployers: ["slack:{DEPLOYER}", "github:octocat"]
  staging:
    branches: ["*"]
    deployers: ["slack:{DEPLOYER}", "slack:{STAGER}"]
notify: {{slack_channel: "#deploys"}}
"""

# Fast waits, same shape as bot.retry.slack_api, so retry tests take milliseconds.
fast_slack_api = policy("slack-test", attempts=6, base=0.01, cap=0.05)


@dataclass
class FixedClock:
    at: float = field(default_factory=time.time)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.at, tz=UTC)

    def sleep(self, seconds: float) -> None:
        self.at += seconds


class PipelineDouble:
    """An in-memory stand-in for bot.pipeline.Pipeline with exactly its Slack-facing interface."""

    def __init__(self, hold: threading.Event | None = None):
        self.configs = {"web": parse_config(WEB)}
        self.calls: list[tuple] = []
        self.events: list[dict] = []
        self.hold = hold  # request_deploy waits for it (30 s at most): a slow pipeline
        self._ids = itertools.count(1)

    def _known(self, service: str) -> None:
        if service not in self.configs:
            raise NotFoundError(f"No service called {service}.")

    def _deploy(self, service: str, environment: str, sha: str, state: str) -> dict:
        return {"id": next(self._ids), "service": service, "environment": environment, "sha": sha,
                "state": state, "started_at": None, "finished_at": None, "events": []}

    def request_deploy(self, service, environment, ref, by, *, force=False, reason=None):
        if self.hold is not None:
            self.hold.wait(30)
        self._known(service)
        self.calls.append(("request_deploy", service, environment, ref, by))
        return self._deploy(service, environment, "a1b2c3d4e5f6a7b8c9d0", "queued")

    def rollback(self, service, environment, by, to=None):
        self._known(service)
        if to == "nope":
            raise NotFoundError(f"No release {to} of {service}.")
        self.calls.append(("rollback", service, environment, by, to))
        return self._deploy(service, environment, "0f9e8d7c6b5a", "rolling_back")

    def lock(self, service, environment, by, reason):
        self._known(service)
        self.calls.append(("lock", service, environment, by, reason))

    def unlock(self, service, environment, by):
        self._known(service)
        if not any(c[0] == "lock" and c[1:3] == (service, environment) for c in self.calls):
            raise MainlineError(f"{service} in {environment} is not locked.")
        self.calls.append(("unlock", service, environment, by))

    def freeze(self, by, reason):
        self.calls.append(("freeze", by, reason))

    def unfreeze(self, by):
        self.calls.append(("unfreeze", by))

    def status(self, service=None):
        if service is not None:
            self._known(service)
        return [{"service": "web", "environment": "production",
                 "live": {"sha": "a1b2c3d4e5f6", "image": "127.0.0.1:5000/web:a1b2c3d",
                          "since": "2026-01-05T10:00:00Z"},
                 "head": "a1b2c3d4e5f6", "in_sync": True, "locked": None,
                 "queue": [{"sha": "feedbeefcafe", "state": "queued", "blocked_by": "outside the deploy window"}]}]

    def deploys(self, service, limit=20):
        self._known(service)
        return [{"id": 7, "environment": "production", "sha": "a1b2c3d4e5f6", "state": "live",
                 "started_at": "2026-01-05T09:58:00Z", "finished_at": "2026-01-05T10:00:00Z", "events": []}][:limit]

    def bisect(self, service, environment, by, good=None, bad=None):
        self._known(service)
        self.calls.append(("bisect", service, environment, by))
        return {"id": 9, "service": service, "environment": environment, "good": "0f9e8d7c6b5a4", "bad": "a1b2c3d4e5f6",
                "commits": 3}

    def approve(self, deploy_id, by, approved, reason="", where=None):
        self.calls.append(("approve", deploy_id, by, approved, reason))

    def service_config(self, service):
        self._known(service)
        return self.configs[service]

    def record_event(self, service, environment, *, kind, message, by):
        self.events.append({"service": service, "environment": environment, "kind": kind, "message": message, "by": by})


def sign(body: str, timestamp: int | None = None, secret: str = SECRET) -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Slash:
    """Sends slash commands the way Slack does: signed form posts with a fresh response_url."""

    client: object
    standin: SlackStandIn
    last_response_id: str = ""

    def __call__(self, command: str, text: str = "", user: str = DEPLOYER, channel: str = "CDEPLOYS"):
        url = self.standin.response_url()
        self.last_response_id = url.rsplit("/", 1)[1]
        body = urlencode({"token": "legacy", "team_id": "T1DC2JH3J", "channel_id": channel, "user_id": user,
                          "user_name": "someone", "command": command, "text": text, "response_url": url,
                          "trigger_id": "1.2.3"})
        return self.client.post("/slack/commands", data=body, headers=sign(body))

    @property
    def answers(self) -> list[dict]:
        return self.standin.responses.get(self.last_response_id, [])

    @property
    def answer(self) -> dict:
        answers = self.answers
        assert len(answers) == 1, answers
        return answers[0]
