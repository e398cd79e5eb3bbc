"""The Slack stand-in answers like Slack's Web API and catches malformed calls."""

import json

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_testkit import TOKEN

from bot.notify.slack_cards import card
from bot.ports import DeployNotice
from sandbox.slack import block_problems


@pytest.fixture
def web(standin):
    return WebClient(token=TOKEN, base_url=standin.url, retry_handlers=[])


def test_auth_test_and_a_message_round_trip(web, standin):
    assert web.auth_test()["user_id"] == "U0MAINLINE"
    posted = web.chat_postMessage(channel="#deploys", text="hello")
    assert posted["channel"] == standin.channel_id("#deploys")
    web.chat_update(channel=posted["channel"], ts=posted["ts"], text="hello again")
    msg = standin.message("#deploys", posted["ts"])
    assert (msg.text, msg.updates) == ("hello again", 1)


def test_a_reply_lands_in_the_thread(web, standin):
    parent = web.chat_postMessage(channel="#deploys", text="card")
    web.chat_postMessage(channel="#deploys", text="detail", thread_ts=parent["ts"])
    assert [m.text for m in standin.thread("#deploys", parent["ts"])] == ["detail"]
    assert [m.text for m in standin.top_level("#deploys")] == ["card"]


def test_a_wrong_token_is_refused(standin):
    web = WebClient(token="xoxb-wrong", base_url=standin.url, retry_handlers=[])
    with pytest.raises(SlackApiError) as caught:
        web.chat_postMessage(channel="#deploys", text="hi")
    assert caught.value.response["error"] == "invalid_auth"


def test_missing_token_channel_or_text_are_violations(standin):
    requests.post(standin.url + "chat.postMessage", data={"channel": "#deploys", "text": "hi"}, timeout=5)
    web = WebClient(token=TOKEN, base_url=standin.url, retry_handlers=[])
    for bad in ({"text": "no channel"}, {"channel": "#deploys"}):
        with pytest.raises(SlackApiError):
            web.api_call("chat.postMessage", json=bad)
    seen = standin.violations
    assert seen == ["chat.postMessage: no token", "chat.postMessage: no channel",
                    "chat.postMessage: neither text nor blocks"]
    standin.reset()  # these were on purpose


def test_updating_a_message_that_does_not_exist_fails(web):
    with pytest.raises(SlackApiError) as caught:
        web.chat_update(channel="CDEPLOYS", ts="1.000000", text="x")
    assert caught.value.response["error"] == "message_not_found"


def test_it_answers_429_with_retry_after_then_recovers(web, standin):
    standin.fail_next(1, status=429, retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        web.chat_postMessage(channel="#deploys", text="hi")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert web.chat_postMessage(channel="#deploys", text="hi")["ok"]


def test_it_answers_5xx_on_demand(web, standin):
    standin.fail_next(2, status=502)
    for _ in range(2):
        with pytest.raises(SlackApiError) as caught:
            web.chat_postMessage(channel="#deploys", text="hi")
        assert caught.value.response.status_code == 502
    assert web.chat_postMessage(channel="#deploys", text="hi")["ok"]


def test_response_urls_record_what_they_receive(standin):
    url = standin.response_url()
    answer = requests.post(url, json={"response_type": "ephemeral", "text": "on it"}, timeout=5)
    assert (answer.status_code, answer.text) == (200, "ok")
    assert standin.responses[url.rsplit("/", 1)[1]] == [{"response_type": "ephemeral", "text": "on it"}]


def test_ephemeral_messages_need_a_user(web, standin):
    web.chat_postEphemeral(channel="CDEPLOYS", user="U1", text="psst")
    assert standin.ephemeral[0]["user"] == "U1"
    with pytest.raises(SlackApiError):
        web.api_call("chat.postEphemeral", json={"channel": "CDEPLOYS", "text": "psst"})
    assert standin.violations == ["chat.postEphemeral: channel and user are required"]
    standin.reset()


BUTTON = {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "go"}


@pytest.mark.parametrize("blocks, problem", [
    ([{"type": "carousel"}], "unknown block type"),
    ([{"type": "section"}], "a section needs text or fields"),
    ([{"type": "section", "text": {"type": "markdown", "text": "x"}}], "text type 'markdown' not allowed"),
    ([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}], "non-empty"),
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], "not allowed here"),
    ([{"type": "actions", "elements": [{**BUTTON, "action_id": "a" * 256}]}], "action_id must be 1-255"),
    ([{"type": "actions", "elements": [BUTTON, BUTTON]}], "is not unique"),
    ([{"type": "actions", "elements": [{**BUTTON, "style": "blue"}]}], "style must be primary or danger"),
    ([{"type": "actions", "elements": []}], "1-25 elements"),
    ([{"type": "divider"}] * 51, "51 blocks, at most 50"),
])
def test_block_kit_mistakes_are_caught(blocks, problem):
    assert any(problem in p for p in block_problems(blocks)), block_problems(blocks)


def test_invalid_blocks_are_refused_and_recorded(web, standin):
    with pytest.raises(SlackApiError) as caught:
        web.chat_postMessage(channel="#deploys", text="x", blocks=[{"type": "section"}])
    assert caught.value.response["error"] == "invalid_blocks"
    assert standin.violations == ["chat.postMessage: blocks[0]: a section needs text or fields"]
    standin.reset()


def test_the_reporters_cards_are_valid_block_kit():
    for state in ["queued", "gating", "live", "rolling_back", "reverted", "failed"]:
        n = DeployNotice(9, "web", "production", "acme/webapp", "abc1234def", state, "x" * 5000, kind="gate",
                         data={"reason": "r" * 4000, "authors": ["a"] * 300})
        _text, blocks = card(n, {})
        assert block_problems(blocks) == [], state
        assert json.dumps(blocks)
