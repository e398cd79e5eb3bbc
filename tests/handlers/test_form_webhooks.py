"""GitHub's default webhook content type, application/x-www-form-urlencoded (the JSON in a
`payload` field), is accepted like JSON, with the signature checked over the raw body as GitHub
signs it. Bodies are made as the GitHub stand-in sends them (sandbox.github_webhooks.encode)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from bot import webhook
from sandbox.github_webhooks import encode
from tests.conftest import SECRET

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PUSH = json.loads((Path(__file__).resolve().parents[2] / "sandbox/contracts/examples/push.json").read_text())


def post(client, body: bytes, content_type: str, event: str = "push", delivery: str = "form-1", signed=None):
    return client.post("/github/webhook", data=body, headers={
        "X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": content_type,
        "X-Hub-Signature-256": signed if signed is not None else webhook.sign(SECRET, body)})


def test_githubs_published_signature_vector_verifies():
    vector = json.loads((FIXTURES / "github_webhook_signature.json").read_text())
    body = vector["payload"].encode()
    assert webhook.sign(vector["secret"], body) == vector["signature"]
    assert webhook.verify(vector["secret"], body, vector["signature"])
    assert not webhook.verify(vector["secret"], body + b" ", vector["signature"])


def test_a_signed_form_delivery_is_queued_with_the_json_of_its_payload_field(client, wired):
    body, content_type = encode(PUSH, "form")
    assert content_type == "application/x-www-form-urlencoded" and body.startswith(b"payload=")

    answer = post(client, body, content_type, delivery="form-push")

    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.json == {"queued": "form-push"}
    stored = wired.store.delivery("form-push")
    assert orjson.loads(stored.payload) == PUSH  # the worker reads the JSON, not the form


def test_json_and_form_deliveries_of_one_event_are_stored_alike(client, wired):
    form, form_type = encode(PUSH, "form")
    plain, plain_type = encode(PUSH, "json")
    assert post(client, form, form_type, delivery="as-form").status_code == 202
    assert post(client, plain, plain_type, delivery="as-json").status_code == 202
    stored = (orjson.loads(wired.store.delivery(d).payload) for d in ("as-form", "as-json"))
    assert next(stored) == next(stored)


def test_a_form_signed_over_its_json_instead_of_the_raw_body_is_refused(client):
    body, content_type = encode(PUSH, "form")
    over_json = webhook.sign(SECRET, json.dumps(PUSH).encode())
    answer = post(client, body, content_type, signed=over_json)
    assert answer.status_code == 401


def test_a_form_ping_is_answered(client):
    body, content_type = encode({"zen": "Design for failure.", "hook_id": 1}, "form")
    answer = post(client, body, content_type, event="ping", delivery="form-ping")
    assert answer.status_code == 200 and answer.json == {"ok": "pong"}


@pytest.mark.parametrize(("body", "says"), [
    (b"zen=Keep+it+logically+awesome", "exactly one `payload` field"),
    (b"payload=%7B%7D&payload=%7B%7D", "exactly one `payload` field"),
    (b"payload=not+json", "not valid JSON"),
    (b"payload", "not a valid application/x-www-form-urlencoded form"),
])
def test_a_signed_form_without_one_json_payload_field_gets_a_clear_400(client, body, says):
    answer = post(client, body, "application/x-www-form-urlencoded; charset=utf-8")
    assert answer.status_code == 400
    assert says in answer.json["error"]


def test_the_stand_in_posting_form_webhooks_over_http_is_accepted(tmp_path, settings, wired):
    """GitHub's default: a repository webhook posting forms, over the network, to the served bot."""
    from bot.app import create_app
    from sandbox.github import GitHubSandbox
    from sandbox.serving import LocalServer

    bot = LocalServer(create_app(settings, wired), "127.0.0.1", 0, "bot-under-test")
    sandbox = GitHubSandbox(tmp_path / "github", webhook_url=f"http://127.0.0.1:{bot.port}/github/webhook",
                            webhook_secret=SECRET).start()
    sandbox.webhook_content_type = "form"
    try:
        sandbox.create_repo("acme", "webapp", {"README.md": "webapp\n"})
        sandbox.push_commit("acme/webapp", "master", {"README.md": "v2\n"}, "v2")
        sandbox.flush_webhooks()
    finally:
        sandbox.stop()
        bot.stop()
    [push] = sandbox.deliveries
    assert (push.event, push.status_code, push.error) == ("push", 202, None)
    assert orjson.loads(wired.store.delivery(push.id).payload) == push.payload
    assert sandbox.violations == []
