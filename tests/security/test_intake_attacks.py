"""Attacks on intake: the webhook inbox (8), the payload's clone_url (18), malformed headers (19).

8.  One delivery that raised held back the whole inbox pass and was retried in a tight loop: a
    repository that cannot be cloned, and JSON nested 1,000 deep (orjson accepted it at intake,
    `json.loads` could not parse it in the worker). Now each delivery is handled on its own, a
    failure is retried with backoff and dead-lettered after N attempts, shown by
    `mainline deliveries --failed` and replayed by `mainline deliveries retry ID`; deep JSON is
    refused at intake, and the worker parses a stored body exactly as intake did.
18. The payload's clone_url was trusted: `--upload-pack=…` ran a command, and the token went to
    whatever host the URL named. Now clones use the configured GitHub base and the full name.
19. Malformed signature headers gave 500s. Now each is a 401 (or a 400 for a bad body) with a
    JSON reason."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid

import pytest

from bot import webhook
from bot.infra.db.inbox import Inbox
from tests.conftest import SECRET, LocalRepo
from tests.handlers.test_github_webhook import (
    example,
    github_web_url,
    merged_pr,
    post,
    publish,
)

ATTEMPTS = 3


@pytest.fixture
def settings(settings, tmp_path):
    """A file:// GitHub base holding the repositories, and a small attempt budget."""
    return settings.model_copy(update={"github_web_url": github_web_url(tmp_path), "delivery_attempts": ATTEMPTS})


@pytest.fixture
def local_repo(local_repo, settings):
    publish(local_repo, settings)
    return local_repo


def production_deploys(wired, service: str = "web") -> list[str]:
    if service not in {s.name for s in wired.store.services()}:
        return []
    return [d["sha"] for d in wired.pipeline.deploys(service) if d["environment"] == "production"]


# -- attack 8: the inbox ---------------------------------------------------------------------------


def test_attack_08_a_repository_that_cannot_be_cloned_never_holds_back_the_inbox(
        client, wired, local_repo, settings, mainline, tmp_path, caplog):
    caplog.errors_expected = True  # the dead letter is logged at ERROR: a person must look
    (tmp_path / "gone").mkdir()
    other = LocalRepo(tmp_path / "gone", service="api", port=18081)  # not (yet) at the configured base
    gone = example("push")
    gone.update(ref="refs/heads/master", before="0" * 40, after=other.commit("first"), deleted=False, commits=[])
    gone["repository"]["full_name"] = "acme/gone"
    assert post(client, "push", gone, delivery="d-gone").status_code == 202
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    assert post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-good").status_code == 202

    assert wired.process_due_deliveries() == 2
    # The good delivery behind it went through in the same pass; the bad one waits out its backoff.
    assert production_deploys(wired) == [sha]
    assert wired.store.unprocessed_deliveries(older_than=0) == []
    [failing] = wired.store.deliveries(failed=True)
    assert (failing["delivery_id"], failing["attempts"], failing["dead"]) == ("d-gone", 1, False)
    assert "acme/gone" in failing["last_error"] and failing["next_attempt_at"] > failing["received_at"]

    assert wired.process_due_deliveries() == 0, "not retried in a tight loop"
    wired.retry_delay = lambda attempts: 0.0  # skip the later waits: the rest is the same
    deadline = time.monotonic() + 10
    while wired.store.deliveries(failed=True)[0]["attempts"] < ATTEMPTS and time.monotonic() < deadline:
        wired.process_due_deliveries()  # the first backoff (2 s) runs out meanwhile
        time.sleep(0.1)
    for _ in range(3):
        assert wired.process_due_deliveries() == 0
    [dead] = wired.store.deliveries(failed=True)
    assert dead["dead"] and dead["attempts"] == ATTEMPTS, "dead-lettered after N attempts, then left alone"
    assert wired.store.unprocessed_deliveries(older_than=0) == []

    shown = mainline("deliveries", "--failed")
    assert shown.exit_code == 0
    assert "d-gone  push  received" in shown.output and f"DEAD after {ATTEMPTS} attempt(s)" in shown.output
    assert "acme/gone" in shown.output and "d-good" not in shown.output
    assert SECRET not in shown.output
    assert "d-good  pull_request.closed" in mainline("deliveries").output
    assert production_deploys(wired, "api") == [], "nothing of the dead delivery was deployed"

    # Once the repository exists, an operator replays the dead letter and it goes through.
    publish(other, settings, "acme/gone")
    replayed = mainline("deliveries", "retry", "d-gone")
    assert replayed.exit_code == 0 and "d-gone queued again" in replayed.output
    assert wired.process_due_deliveries() == 1
    assert wired.store.deliveries(failed=True) == []
    assert production_deploys(wired, "api") == [gone["after"]]
    unknown = mainline("deliveries", "retry", "no-such-delivery")
    assert unknown.exit_code == 1 and "no delivery no-such-delivery" in unknown.output


def test_attack_08_json_nested_1000_deep_is_refused_and_never_holds_back_the_inbox(client, wired, local_repo):
    # orjson reads this; `json.loads`, which the worker used, raised RecursionError on it.
    body = '{"ref": "refs/heads/master", "extra": ' + "[" * 1000 + "]" * 1000 + "}"
    refused = post(client, "push", None, body=body.encode(), delivery="d-deep")
    assert refused.status_code == 400 and "nests deeper than 64 levels" in refused.json["error"]
    assert wired.store.deliveries() == []

    # A deep body recorded before intake refused it (any older Mainline) is read the way intake
    # reads, finished with a clear outcome, not retried, and the delivery behind it still goes.
    Inbox(wired.store).record("d-old-deep", "push", None, body)
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    assert post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-good").status_code == 202
    assert wired.process_due_deliveries() == 2
    assert production_deploys(wired) == [sha]
    old = wired.store.delivery("d-old-deep")
    assert old.processed_at is not None and old.attempts == 1
    assert old.outcome == "not acted on: body nests deeper than 64 levels; GitHub's payloads never do"
    assert wired.store.unprocessed_deliveries(older_than=0) == []


def test_attack_08_a_delivery_that_kills_the_worker_is_dead_lettered_not_crash_looped(client, wired, local_repo,
                                                                                       mainline):
    from datetime import timedelta

    from bot.infra.db.models import DeliveryRow

    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    assert post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-poison").status_code == 202
    for i in range(ATTEMPTS):  # each worker that took it died mid-way (say, out of memory), two minutes ago
        assert wired.store.claim_delivery("d-poison", f"killed-worker-{i}", max_attempts=ATTEMPTS)
        with wired.store.session() as s:
            row = s.get(DeliveryRow, "d-poison")
            row.claimed_at -= timedelta(minutes=2)
    wired.process_due_deliveries()
    assert production_deploys(wired) == [], "the next worker did not take it a fourth time"
    [dead] = wired.store.deliveries(failed=True)
    assert dead["dead"] and dead["last_error"] == f"the worker stopped while handling it, {ATTEMPTS} time(s)"
    assert "d-poison" in mainline("deliveries", "--failed").output


# -- attack 18: the payload's clone_url --------------------------------------------------------------


class _Listener(http.server.BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self):
        self.seen.append(f"{self.command} {self.path} {self.headers.get('Authorization')}")
        self.send_response(404)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def listener():
    """A host the payload names: an HTTP server on 127.0.0.1 that records every request."""
    handler = type("Listener", (_Listener,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler.seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize("hostile", ["--upload-pack=touch {pwned}", "{listener}/evil/web.git",
                                     "ext::sh -c touch% {pwned}"])
def test_attack_18_the_payloads_clone_url_is_never_used(client, wired, local_repo, settings, listener, tmp_path,
                                                         hostile):
    base, seen = listener
    pwned = tmp_path / "pwned"
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    payload = merged_pr(local_repo, sha)
    payload["repository"]["clone_url"] = hostile.format(pwned=pwned, listener=base)
    assert post(client, "pull_request", payload, delivery="d-hostile").status_code == 202
    wired.process_due_deliveries()

    assert not pwned.exists(), "a command ran"
    assert seen == [], "a request reached the host the payload named"
    assert production_deploys(wired) == [sha], "the deploy comes from the configured GitHub"
    assert wired.store.service("web").clone_url == f"{github_web_url(tmp_path)}/Codertocat/Hello-World.git"


@pytest.mark.parametrize("full_name", ["--upload-pack=touch /tmp/pwned/x", "../../etc/passwd", "acme/../../x",
                                       "acme", "acme/web/../../../x", "-oProxyCommand=x/y"])
def test_attack_18_a_hostile_repository_name_is_refused_with_a_clear_outcome(client, wired, local_repo, full_name):
    payload = merged_pr(local_repo, local_repo.commit("Merge pull request #7 from octocat/feature"))
    payload["repository"]["full_name"] = full_name
    assert post(client, "pull_request", payload, delivery="d-name").status_code == 202
    wired.process_due_deliveries()
    row = wired.store.delivery("d-name")
    assert row.processed_at is not None and row.attempts == 1, "refused once, not retried"
    assert "payload lacks what we need" in row.outcome and "full_name" in row.outcome
    assert wired.store.services() == []


# -- attack 19: malformed headers --------------------------------------------------------------------


def _signed_headers(body: bytes, **overrides) -> dict:
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()),
               "X-Hub-Signature-256": webhook.sign(SECRET, body), "Content-Type": "application/json"}
    headers.update(overrides)
    return headers


GOOD_BODY = json.dumps({"ref": "refs/heads/x"}).encode()


def on_the_wire(value: str | None) -> str | None:
    """A header as a real WSGI server hands it over: the client's UTF-8 bytes read as latin-1."""
    return None if value is None else value.encode("utf-8").decode("latin-1")


@pytest.mark.parametrize("signature", [
    "sha256=é", "sha256=" + "é" * 64, "sha256=" + "ф" * 32, "sha256=", "sha256", "sha1=" + "0" * 40, "",
    "sha256=" + "Z" * 64, "sha256=" + "0" * 63, "sha256=" + "0" * 65, "sha256=" + "0" * 8000, " sha256=" + "0" * 64,
    webhook.sign(SECRET, GOOD_BODY).upper(), webhook.sign("not the secret", GOOD_BODY)])
def test_attack_19_a_malformed_github_signature_is_401_never_500(client, wired, signature):
    for sent in {signature, on_the_wire(signature)}:
        response = client.post("/github/webhook", data=GOOD_BODY,
                               headers=_signed_headers(GOOD_BODY, **{"X-Hub-Signature-256": sent}))
        assert response.status_code == 401 and "X-Hub-Signature-256" in response.json["error"]
    assert wired.store.deliveries() == []


@pytest.mark.parametrize(("body", "headers", "status", "says"), [
    (b"\xff\xfe{\x00}", {}, 400, "not valid JSON"),  # not UTF-8
    ('{"ref": "é"}'.encode("latin-1"), {}, 400, "not valid JSON"),
    (b"{not json", {}, 400, "not valid JSON"),
    (b"[1, 2]", {}, 400, "JSON object"),
    (b'{"a": NaN}', {}, 400, "not valid JSON"),
    (b'{"a": "\\ud800"}', {}, 400, "not valid JSON"),
    (b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}", {}, 400, "nests deeper"),
    (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", {}, 400, "not valid JSON"),
    (GOOD_BODY, {"X-GitHub-Event": "é"}, 400, "X-GitHub-Event"),
    (GOOD_BODY, {"X-GitHub-Event": ""}, 400, "X-GitHub-Event"),
    (GOOD_BODY, {"X-GitHub-Delivery": "x" * 101}, 400, "X-GitHub-Delivery"),
    (GOOD_BODY, {"X-GitHub-Delivery": "../é"}, 400, "X-GitHub-Delivery"),
    (GOOD_BODY, {"X-GitHub-Event": "definitely_not_an_event"}, 202, "ignored"),
    (json.dumps({"action": "x" * 5000, "ref": "refs/heads/x"}).encode(), {"X-GitHub-Event": "issues"}, 202, "ignored"),
])
def test_attack_19_a_malformed_github_request_is_4xx_or_ignored_never_500(client, wired, body, headers, status, says):
    response = client.post("/github/webhook", data=body, headers=_signed_headers(body, **headers))
    assert response.status_code == status, response.get_data(as_text=True)
    assert says in json.dumps(response.json)
    assert wired.store.deliveries() == []


def test_attack_19_an_oversized_github_body_is_413(client, settings, wired):
    body = b'{"pad": "' + b"x" * settings.max_body_bytes + b'"}'
    response = client.post("/github/webhook", data=body, headers=_signed_headers(body))
    assert response.status_code == 413 and response.is_json


@pytest.fixture
def slack_bot(settings, tmp_path):
    """The real app with Slack configured; nothing here is ever sent to Slack (every request is refused)."""
    from bot.app import create_app
    from bot.wiring import wire

    slack_settings = settings.model_copy(update={
        "slack_signing_secret": type(settings.github_webhook_secret)("slack-signing-secret"),
        "slack_bot_token": type(settings.github_webhook_secret)("xoxb-never-used"),
        "slack_api_url": "http://127.0.0.1:9/api/"})
    wired = wire(slack_settings)
    yield create_app(slack_settings, wired).test_client()
    wired.slack.close()


def _slack_headers(body: str, timestamp: str, signature: str | None = None) -> dict:
    import hashlib
    import hmac

    digest = hmac.new(b"slack-signing-secret", f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}" if signature is None else signature,
            "Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("path", ["/slack/commands", "/slack/actions"])
@pytest.mark.parametrize(("timestamp", "signature"), [
    ("12345678901234567890", None), ("9" * 400, None), ("9" * 5000, None),  # 8+ digits, and int()'s digit limit
    ("١٧٠٠٠٠٠٠٠٠", None), ("²", None), ("１７００００００００", None),  # digits, but not ASCII ones
    ("-1700000000", None), ("+1700000000", None), ("1.7e9", None), (" 1700000000", None), ("", None),
    ("{now}", "v0=é"), ("{now}", "v0=" + "é" * 64), ("{now}", "v0=" + "0" * 64), ("{now}", "v1=abc"),
    ("{now}", "v0=" + "A" * 64), ("{now}", ""),
])
def test_attack_19_a_malformed_slack_timestamp_or_signature_is_401_never_500(slack_bot, path, timestamp, signature):
    body = "command=%2Fdeploy&text=web&user_id=U1&channel_id=C1&response_url=http%3A%2F%2F127.0.0.1%3A9%2Fr"
    stamp = timestamp.format(now=int(time.time()))
    for sent_stamp, sent_signature in {(stamp, signature), (on_the_wire(stamp), on_the_wire(signature))}:
        response = slack_bot.post(path, data=body, headers=_slack_headers(body, sent_stamp, sent_signature))
        assert response.status_code == 401, response.get_data(as_text=True)
        assert "Slack signature" in response.json["error"] or "timestamp" in response.json["error"]


def test_attack_19_slack_bodies_not_utf8_or_oversized_are_4xx(slack_bot, settings):
    stamp = str(int(time.time()))
    not_utf8 = slack_bot.post("/slack/commands", data=b"text=\xff\xfe", headers=_slack_headers("", stamp))
    assert not_utf8.status_code in (400, 401) and "error" in not_utf8.json
    big = slack_bot.post("/slack/commands", data=b"t=" + b"x" * settings.max_body_bytes,
                         headers=_slack_headers("", stamp))
    assert big.status_code == 413 and big.is_json
