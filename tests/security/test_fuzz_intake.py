"""Property-based fuzzing of intake: whatever arrives at POST /github/webhook, /slack/commands or
/slack/actions, signed or not, the answer is never a 5xx, never carries a traceback, and comes
quickly; and whatever a signed webhook recorded, the worker's inbox pass never raises."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot import webhook
from tests.conftest import SECRET
from tests.handlers.test_github_webhook import github_web_url
from tests.slack.slack_testkit import FixedClock, PipelineDouble

FUZZ = hypothesis_settings(max_examples=150, deadline=None, derandomize=True, database=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLACK_SECRET = "fuzz-slack-signing-secret"

# Header values as a real server hands them over: any bytes, read as latin-1 (no CR/LF).
header_text = st.one_of(st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]),
                                  max_size=80),
                          st.text(st.characters(min_codepoint=1, max_codepoint=255, blacklist_characters="\r\n"),
                                  max_size=300))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=30)
GITHUB_KEYS = ["action", "ref", "before", "after", "deleted", "commits", "repository", "pull_request", "pusher",
               "issue", "comment", "sender", "installation", "full_name", "number", "merged", "merge_commit_sha",
               "base", "head", "user", "login", "sha", "id", "message", "body", "clone_url"]
github_like = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(GITHUB_KEYS), inner, max_size=6)), max_leaves=40)
# Near misses reach further than random text: the right prefix, then anything; digits of any script.
github_signatures = st.one_of(header_text, header_text.map(lambda t: "sha256=" + t),
                              st.text("0123456789abcdefABCDEF", min_size=60, max_size=70).map(lambda t: "sha256=" + t))
slack_signatures = st.one_of(header_text, header_text.map(lambda t: "v0=" + t),
                             st.text("0123456789abcdef", min_size=60, max_size=70).map(lambda t: "v0=" + t))
slack_timestamps = st.one_of(header_text, st.integers().map(str), st.integers(min_value=0).map(lambda n: str(n) * 50),
                             st.text(st.characters(whitelist_categories=["Nd"]), min_size=1, max_size=30))
events = st.one_of(st.sampled_from(["push", "pull_request", "issue_comment", "ping", "issues"]), header_text)


def _answer_is_sound(response) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text
    assert "Traceback" not in text and 'File "' not in text, text


@pytest.fixture
def settings(settings, tmp_path):
    """Repositories would be cloned from an empty file:// base: nothing leaves the machine."""
    return settings.model_copy(update={"github_web_url": github_web_url(tmp_path)})


def _post_github(client, body: bytes, headers: dict):
    response = client.post("/github/webhook", data=body, headers=headers)
    _answer_is_sound(response)
    return response


@FUZZ
@given(body=st.binary(max_size=2000), event=events, delivery=header_text, signature=github_signatures,
       content_type=header_text)
def test_fuzz_unsigned_github_requests_are_refused_cleanly(client, body, event, delivery, signature, content_type):
    response = _post_github(client, body, {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                                           "X-Hub-Signature-256": signature, "Content-Type": content_type})
    assert response.status_code == 401


@FUZZ
@given(body=st.one_of(st.binary(max_size=2000), json_value.map(lambda v: json.dumps(v).encode()),
                      github_like.map(lambda v: json.dumps(v).encode())),
       event=events, delivery=st.one_of(st.uuids().map(str), header_text))
def test_fuzz_signed_github_requests_never_fail_intake_or_the_worker(client, wired, body, event, delivery):
    response = _post_github(client, body, {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                                           "X-Hub-Signature-256": webhook.sign(SECRET, body)})
    assert response.status_code in (200, 202, 400), response.get_data(as_text=True)
    wired.process_due_deliveries()  # never raises: a bad delivery is recorded and retried later


@FUZZ
@given(payload=github_like, event=st.sampled_from(["push", "pull_request"]),
       full_name=st.one_of(st.just("acme/web"), st.text(max_size=30)))
def test_fuzz_github_shaped_payloads_are_recorded_and_handled_without_a_crash(client, wired, payload, event,
                                                                              full_name):
    document = payload if isinstance(payload, dict) else {"value": payload}
    document.setdefault("action", "closed")
    document["repository"] = {"full_name": full_name, "clone_url": "--upload-pack=touch /tmp/pwned-fuzz"}
    body = json.dumps(document).encode()
    _post_github(client, body, {"X-GitHub-Event": event, "X-GitHub-Delivery": f"fuzz-{time.monotonic_ns()}",
                                "X-Hub-Signature-256": webhook.sign(SECRET, body)})
    wired.process_due_deliveries()


# -- Slack -------------------------------------------------------------------------------------------


class RecordingChat:
    """Answers go nowhere: the fuzz checks the HTTP side only."""

    def __init__(self):
        self.said: list = []

    def respond(self, response_url: str, payload: dict) -> None:
        self.said.append((response_url, payload))

    def post_ephemeral(self, channel: str, user: str, text: str, blocks: list | None = None) -> None:
        self.said.append((channel, user, text))


@pytest.fixture
def slack(settings):
    """Both Slack blueprints, as create_app mounts them, on a pipeline double; jobs run inline."""
    from handlers.slack import actions as slack_actions
    from handlers.slack import commands as slack_commands
    from handlers.slack.common import SlackDeps

    clock = FixedClock()
    deps = SlackDeps(signing_secret=SLACK_SECRET, pipeline=PipelineDouble(), chat=RecordingChat(), clock=clock,
                     run_later=lambda job: job())
    app = Flask("mainline-fuzz")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.register_blueprint(slack_commands.blueprint(deps))
    app.register_blueprint(slack_actions.blueprint(deps))
    return app.test_client(), clock


def _slack_signed(body: bytes, clock: FixedClock) -> dict:
    stamp = str(int(clock.at))
    digest = hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


def _post_slack(client, path: str, body: bytes, headers: dict):
    response = client.post(path, data=body, headers=headers)
    _answer_is_sound(response)
    return response


slack_paths = st.sampled_from(["/slack/commands", "/slack/actions"])
slack_commands = st.one_of(st.sampled_from(["/deploy", "/rollback", "/lock", "/unlock", "/freeze", "/unfreeze",
                                            "/status", "/history", "/mainline", "/help"]), st.text(max_size=20))
slack_words = st.one_of(st.sampled_from(["web", "production", "staging", "--force", "to", "nope", "help"]),
                        st.text(max_size=15))
slack_text = st.lists(slack_words, max_size=6).map(" ".join)


@FUZZ
@given(path=slack_paths, body=st.binary(max_size=2000), timestamp=slack_timestamps, signature=slack_signatures)
def test_fuzz_unsigned_slack_requests_are_refused_cleanly(slack, path, body, timestamp, signature):
    client, _ = slack
    response = _post_slack(client, path, body, {"X-Slack-Request-Timestamp": timestamp,
                                                "X-Slack-Signature": signature})
    assert response.status_code in (400, 401)
    assert "error" in response.json


@FUZZ
@given(command=slack_commands, text=slack_text, user=st.one_of(st.just("U2CERLKJA"), st.text(max_size=12)),
       channel=st.text(max_size=12), extra=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3))
def test_fuzz_signed_slash_commands_never_fail(slack, command, text, user, channel, extra):
    client, clock = slack
    body = urlencode({**extra, "command": command, "text": text, "user_id": user, "channel_id": channel,
                      "response_url": "http://127.0.0.1:9/response"}).encode()
    _post_slack(client, "/slack/commands", body, _slack_signed(body, clock))


@FUZZ
@given(path=slack_paths, body=st.binary(max_size=2000))
def test_fuzz_signed_arbitrary_slack_bodies_never_fail(slack, path, body):
    client, clock = slack
    _post_slack(client, path, body, _slack_signed(body, clock))


action_ids = st.one_of(
    st.builds(lambda verb, n, service, env: f"{verb}:{n}:{service}:{env}",
              st.sampled_from(["approve", "reject", "rollback", "lock", "nope"]),
              st.one_of(st.integers(min_value=0, max_value=10**30).map(str), st.text(max_size=6)),
              st.sampled_from(["web", "nope", ""]), st.sampled_from(["production", "staging", "qa", ""])),
    st.text(max_size=40))


@FUZZ
@given(action_id=action_ids, payload=json_value, user=st.one_of(st.just({"id": "U2CERLKJA"}), json_value),
       kind=st.one_of(st.just("block_actions"), json_value))
def test_fuzz_signed_slack_button_payloads_never_fail(slack, action_id, payload, user, kind):
    client, clock = slack
    document = {"type": kind, "user": user, "channel": {"id": "CDEPLOYS"}, "response_url": "http://127.0.0.1:9/r",
                "actions": [{"action_id": action_id}], "extra": payload}
    body = urlencode({"payload": json.dumps(document)}).encode()
    _post_slack(client, "/slack/actions", body, _slack_signed(body, clock))


def test_signed_slack_payload_nested_1000_deep_is_a_4xx(slack):
    client, clock = slack
    body = urlencode({"payload": '{"type": "block_actions", "x": ' + "[" * 1000 + "]" * 1000 + "}"}).encode()
    response = _post_slack(client, "/slack/actions", body, _slack_signed(body, clock))
    assert response.status_code in (200, 400)
