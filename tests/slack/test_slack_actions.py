"""POST /slack/actions: the deploy card's buttons, verified and authorised like commands."""

import json
import time
from urllib.parse import urlencode

import pytest
from flask import Flask
from slack_testkit import DEPLOYER, SECRET, STAGER, STRANGER, FixedClock, sign

from bot.notify.slack_cards import card
from bot.ports import DeployNotice
from handlers.slack import actions as slack_actions
from handlers.slack.actions import ButtonAction, parse_action_id
from handlers.slack.common import SlackDeps


def _card_buttons(state: str) -> dict[str, str]:
    """Label -> action_id of the buttons the reporter puts on a card in `state`."""
    notice = DeployNotice(12, "web", "production", "acme/webapp", "a1b2c3d4e5", state, "")
    _, blocks = card(notice, {})
    return {b["text"]["text"]: b["action_id"] for blk in blocks if blk["type"] == "actions" for b in blk["elements"]}


def click(client, standin, label: str, user: str = DEPLOYER, state: str = "gating", timestamp=None, secret=None):
    """Press a button on deploy #12's card, the way Slack posts it."""
    response_url = standin.response_url()
    payload = {
        "type": "block_actions", "user": {"id": user, "username": "someone"},
        "channel": {"id": "CDEPLOYS"},
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": "CDEPLOYS"},
        "response_url": response_url, "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": _card_buttons(state)[label], "block_id": "deploy-12",
                     "value": "12", "action_ts": str(time.time())}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    kwargs = {} if secret is None else {"secret": secret}
    answer = client.post("/slack/actions", data=body, headers=sign(body, timestamp, **kwargs))
    return answer, standin.responses.get(response_url.rsplit("/", 1)[1], [])


def test_the_cards_action_ids_read_back():
    assert parse_action_id(_card_buttons("gating")["Approve"]) == ButtonAction("approve", 12, "web", "production")
    assert parse_action_id("lock:3:api:eu-west:1") == ButtonAction("lock", 3, "api", "eu-west:1")
    for bad in ("approve", "approve:x:web:production", "launch:1:web:production", "approve:1::production"):
        with pytest.raises(ValueError):
            parse_action_id(bad)


def test_approve(client, standin, pipeline):
    answer, replies = click(client, standin, "Approve")
    assert answer.status_code == 200
    assert pipeline.calls == [("approve", 12, f"slack:{DEPLOYER}", True, "")]
    assert replies[0]["text"] == "You approved deploy #12 of web in production."
    assert replies[0]["response_type"] == "ephemeral"


def test_reject(client, standin, pipeline):
    _, replies = click(client, standin, "Reject")
    assert pipeline.calls == [("approve", 12, f"slack:{DEPLOYER}", False, "rejected from Slack")]
    assert replies[0]["text"] == "You rejected deploy #12 of web in production."


def test_roll_back_from_a_live_card(client, standin, pipeline):
    _, replies = click(client, standin, "Roll back", state="live")
    assert pipeline.calls == [("rollback", "web", "production", f"slack:{DEPLOYER}", None)]
    assert replies[0]["text"] == "Rolling back web in production: deploy #1 is rolling_back."


def test_lock_from_a_card(client, standin, pipeline):
    _, replies = click(client, standin, "Lock", state="failed")
    assert pipeline.calls == [("lock", "web", "production", f"slack:{DEPLOYER}", "locked from the card of deploy #12")]
    assert replies[0]["text"] == ":lock: You locked web in production."


@pytest.mark.parametrize("user", [STRANGER, STAGER])
def test_a_button_pressed_by_someone_not_listed_is_refused_and_recorded(client, standin, pipeline, user):
    _, replies = click(client, standin, "Approve", user=user)
    assert pipeline.calls == []
    assert replies[0]["response_type"] == "ephemeral"
    assert replies[0]["text"].startswith(":no_entry: You are not a deployer of web in production.")
    assert [e["kind"] for e in pipeline.events] == ["refused"]
    assert pipeline.events[0]["by"] == f"slack:{user}"


def test_a_stale_or_forged_click_is_401(client, standin, pipeline):
    stale, _ = click(client, standin, "Approve", timestamp=int(time.time()) - 301)
    forged, _ = click(client, standin, "Approve", secret="guess")
    assert (stale.status_code, forged.status_code) == (401, 401)
    assert "error" in stale.json and "error" in forged.json
    assert pipeline.calls == []


def test_a_malformed_payload_is_400(client, pipeline):
    payloads = ["", urlencode({"payload": "{not json"}), urlencode({"payload": "[]"}),
                urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"}})}),
                urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"},
                                                  "channel": {"id": "C1"}, "actions": [{"action_id": "approve:x"}]})})]
    for body in payloads:
        answer = client.post("/slack/actions", data=body, headers=sign(body))
        assert answer.status_code == 400, body
        assert answer.json["error"]
    assert pipeline.calls == []


def test_other_interactions_are_acknowledged_and_ignored(client, pipeline):
    body = urlencode({"payload": json.dumps({"type": "view_closed", "user": {"id": DEPLOYER}})})
    answer = client.post("/slack/actions", data=body, headers=sign(body))
    assert answer.status_code == 200
    assert pipeline.calls == []


def test_a_button_in_a_channel_mainline_does_not_serve_is_refused(pipeline, reporter, standin):
    deps = SlackDeps(SECRET, pipeline, reporter, FixedClock(), run_later=lambda job: job(),
                     allowed_channels=frozenset({"COTHER"}))
    app = Flask("channels")
    app.register_blueprint(slack_actions.blueprint(deps))
    answer, replies = click(app.test_client(), standin, "Approve")
    assert answer.status_code == 200
    assert replies[0]["text"] == "Mainline does not take commands in this channel."
    assert pipeline.calls == []
