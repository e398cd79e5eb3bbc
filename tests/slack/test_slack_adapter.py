"""The Slack reporter: one live card per deploy on the Slack stand-in, details in its thread,
and Slack never holding a deploy back."""

import logging
import threading
import time

from slack_testkit import TOKEN, fast_slack_api

from bot.infra.slack.web import SlackWeb
from bot.notify.slack_cards import MemoryCardStore
from bot.notify.slack_reporter import SlackReporter
from bot.ports import DeployNotice
from bot.retry import slack_api
from sandbox.slack import displayed

SHA = "a1b2c3d4e5f60718293a"


def notice(deploy_id: int, state: str, message: str = "", kind: str = "transition", **data) -> DeployNotice:
    return DeployNotice(deploy_id, "web", "production", "acme/webapp", SHA, state, message or f"now {state}",
                        kind=kind, pull_numbers=(41, 42), requested_by="github:octocat",
                        data={"authors": ["octocat", "hubot"], **data})


FORWARD = ["queued", "gating", "building", "rolling_out", "verifying", "live"]
BAD = ["queued", "gating", "building", "rolling_out", "verifying",
       "rolling_back", "rolled_back", "reverting", "reverted"]


def the_card(standin, channel="#deploys"):
    cards = standin.top_level(channel)
    assert len(cards) == 1, [c.text for c in cards]
    return cards[0]


def buttons(message) -> list[str]:
    return [e["text"]["text"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def deliver_one_by_one(reporter, notices):
    """As a real deploy does: seconds between states, so each one reaches Slack on its own."""
    for n in notices:
        reporter.notify(n)
        assert reporter.flush(10)


def test_a_deploy_gets_one_card_updated_in_place_until_live(reporter, standin):
    gate = notice(1, "gating", "waiting for approval", kind="gate", reason="migration 0042 needs approval")
    deliver_one_by_one(reporter, [notice(1, s) for s in FORWARD[:2]] + [gate] + [
        notice(1, s, "healthy for 30s, 0 errors" if s == "live" else "") for s in FORWARD[2:]])

    card = the_card(standin)
    assert card.text == "web a1b2c3d → production: live"
    assert card.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "web → production"}}
    assert ":white_check_mark: *live* · `a1b2c3d` · deploy #1" in card.blocks[1]["text"]["text"]
    assert "PRs #41, #42" in card.blocks[1]["text"]["text"]
    assert "authors <@U0OCTOCAT> @hubot" in card.blocks[1]["text"]["text"]
    assert buttons(card) == ["Roll back", "Lock"]
    assert card.updates == len(FORWARD)  # posted once, then one edit per later notice

    thread = [m.text for m in standin.thread("#deploys", card.ts)]
    assert thread[1].startswith(":rocket: Started deploying web `a1b2c3d` in production")
    assert any(":no_entry: web `a1b2c3d` in production is blocked by a gate: migration 0042 needs approval" in t
               for t in thread)
    assert thread[-1] == (":white_check_mark: web `a1b2c3d` in production is live. healthy for 30s, 0 errors"
                          "\ncc <@U0OCTOCAT> @hubot")


def test_a_gate_block_shows_its_reason_and_the_approve_buttons(reporter, standin):
    reporter.notify(notice(5, "gating", "blocked", kind="gate", reason="outside the deploy window (mon-fri 09-17)"))
    assert reporter.flush(10)
    card = the_card(standin)
    assert any(":no_entry: Blocked: outside the deploy window (mon-fri 09-17)" in b.get("text", {}).get("text", "")
               for b in card.blocks)
    assert buttons(card) == ["Approve", "Reject", "Roll back", "Lock"]


def test_a_bad_release_card_goes_through_rollback_to_reverted(reporter, standin):
    deliver_one_by_one(reporter, [notice(2, s, "error rate 12% > 1%" if s == "rolling_back" else "") for s in BAD])
    card = the_card(standin)
    assert card.updates == len(BAD) - 1
    assert card.text == "web a1b2c3d → production: reverted"
    assert buttons(card) == ["Lock"]
    thread = standin.thread("#deploys", card.ts)
    texts = [m.text for m in thread]
    assert ":rewind: error rate 12% > 1%" in [displayed(t) for t in texts]  # `>` is sent as `&gt;`
    assert any(t.startswith(":leftwards_arrow_with_hook: web `a1b2c3d` in production rolled back") for t in texts)
    assert texts[-1].startswith(":back: web `a1b2c3d` in production reverted") and "cc <@U0OCTOCAT>" in texts[-1]
    broadcast = [c.params["text"] for c in standin.calls if c.params.get("reply_broadcast")]
    assert len(broadcast) == 2  # rolled back and reverted reach the channel, not only the thread


def test_the_services_channel_is_used_when_the_notice_names_one(reporter, standin):
    reporter.notify(notice(3, "queued", slack_channel="#web-team"))
    assert reporter.flush(10)
    assert the_card(standin, "#web-team").text.endswith("queued")
    assert standin.top_level("#deploys") == []


def test_each_deploy_has_its_own_card(reporter, standin):
    reporter.notify(notice(1, "queued"))
    reporter.notify(notice(2, "queued"))
    reporter.notify(notice(1, "building"))
    assert reporter.flush(10)
    cards = standin.top_level("#deploys")
    assert sorted(c.text for c in cards) == ["web a1b2c3d → production: building", "web a1b2c3d → production: queued"]


def test_slack_rate_limiting_then_ok_still_ends_with_the_final_card(reporter, standin):
    standin.fail_next(3, status=429, retry_after=0)
    for state in FORWARD:
        reporter.notify(notice(1, state))
    assert reporter.flush(10)
    assert [c.status for c in standin.calls][:3] == [429, 429, 429]
    assert the_card(standin).text.endswith(": live")


def test_retry_after_is_honoured(standin):
    reporter = SlackReporter(SlackWeb(TOKEN, standin.url, policy=slack_api), "#deploys")
    try:
        standin.fail_next(1, status=429, retry_after=1)
        started = time.monotonic()
        reporter.notify(notice(1, "queued"))
        assert reporter.flush(10)
        assert time.monotonic() - started >= 0.95
        assert the_card(standin).text.endswith("queued")
    finally:
        reporter.close()


def test_server_errors_are_retried(reporter, standin):
    standin.fail_next(2, status=503)
    reporter.notify(notice(1, "live"))
    assert reporter.flush(10)
    assert [c.status for c in standin.calls] == [503, 503, 200, 200]
    assert the_card(standin).text.endswith(": live")


def test_slack_down_never_holds_a_deploy_back_and_the_card_catches_up(reporter, standin):
    reporter.notify(notice(1, "queued"))
    assert reporter.flush(10)
    standin.fail_next(10_000, status=503)
    # Slack hangs as well: a call made now gets no answer until `answering` is set (30 s at most).
    answering, served = threading.Event(), standin._server.app

    def hanging(environ, start_response):
        answering.wait(30)
        return served(environ, start_response)

    standin._server.app = hanging
    answered = len(standin.calls)
    for state in FORWARD[1:]:
        reporter.notify(notice(1, state))  # returns at once: the deploy goes on
    assert len(standin.calls) == answered, "a notify waited for Slack"
    answering.set()
    standin._server.app = served
    assert not reporter.flush(0.3)  # still down: nothing delivered, nothing blocked
    assert the_card(standin).text.endswith(": queued")
    standin.fail_next(0)
    assert reporter.flush(10)
    assert the_card(standin).text.endswith(": live")
    thread = [m.text for m in standin.thread("#deploys", the_card(standin).ts)]
    assert len(thread) == len(FORWARD)  # every detail arrives, in order, once
    assert thread[-1].startswith(":white_check_mark:")


def test_a_restarted_reporter_edits_the_card_it_posted_before(standin):
    store = MemoryCardStore()  # the lead backs this with the database
    first = SlackReporter(SlackWeb(TOKEN, standin.url, policy=fast_slack_api), "#deploys", store=store)
    first.notify(notice(1, "building"))
    assert first.flush(10)
    first.close()
    second = SlackReporter(SlackWeb(TOKEN, standin.url, policy=fast_slack_api), "#deploys", store=store)
    second.notify(notice(1, "live"))
    assert second.flush(10)
    second.close()
    assert the_card(standin).text.endswith(": live")


def test_the_token_never_appears_in_logs_or_messages(reporter, standin, caplog):
    caplog.set_level(logging.DEBUG)
    standin.fail_next(2, status=429, retry_after=0)
    for state in BAD:
        reporter.notify(notice(1, state))
    assert reporter.flush(10)
    reporter.respond(standin.response_url(), {"text": "hello"})
    assert "rate limited" in caplog.text  # the retries were logged ...
    assert TOKEN not in caplog.text  # ... without the token
    assert all(TOKEN not in (m.text + str(m.blocks)) for msgs in standin.messages.values() for m in msgs)
    assert TOKEN not in repr(reporter.__dict__)


def test_ephemeral_replies_and_response_urls(reporter, standin):
    reporter.post_ephemeral("CDEPLOYS", "U1", "only you can see this")
    url = standin.response_url()
    standin.fail_next(1, status=500, methods={"response_url"})
    reporter.respond(url, {"response_type": "in_channel", "text": "deployed"})
    assert standin.ephemeral[0]["text"] == "only you can see this"
    assert standin.responses[url.rsplit("/", 1)[1]] == [{"response_type": "in_channel", "text": "deployed"}]
