"""POST /slack/commands: every command through a signed request to the Flask app, answered on the
Slack stand-in's response_url."""

import threading
import time
from urllib.parse import urlencode

from flask import Flask
from slack_sdk.signature import SignatureVerifier
from slack_testkit import DEPLOYER, SECRET, STAGER, STRANGER, FixedClock, PipelineDouble, Slash, sign

from handlers.slack import commands as slack_commands
from handlers.slack.common import SlackDeps, thread_pool_runner

# Slack's documented request-signing example ("Verifying requests from Slack", api.slack.com),
# as quoted in the project's reference corpus README.
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = 1531420618
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_slacks_documented_signing_example_verifies():
    verifier = SignatureVerifier(VECTOR_SECRET, clock=type("At", (), {"now": lambda self: VECTOR_TIMESTAMP})())
    assert verifier.is_valid(VECTOR_BODY, str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE)
    assert sign(VECTOR_BODY, VECTOR_TIMESTAMP, VECTOR_SECRET)["X-Slack-Signature"] == VECTOR_SIGNATURE


def test_the_endpoint_accepts_slacks_documented_request(pipeline, reporter):
    deps = SlackDeps(VECTOR_SECRET, pipeline, reporter, FixedClock(VECTOR_TIMESTAMP + 30), run_later=lambda job: job())
    app = Flask("vector")
    app.register_blueprint(slack_commands.blueprint(deps))
    headers = {"X-Slack-Request-Timestamp": str(VECTOR_TIMESTAMP), "X-Slack-Signature": VECTOR_SIGNATURE,
               "Content-Type": "application/x-www-form-urlencoded"}
    answer = app.test_client().post("/slack/commands", data=VECTOR_BODY, headers=headers)
    assert answer.status_code == 200
    # /webhook-collect is not one of ours: the person gets the list of commands, no stack trace.
    assert answer.json["response_type"] == "ephemeral"
    assert "Unknown command `webhook-collect`" in answer.json["text"]


def _command_body(text="web"):
    return urlencode({"command": "/deploy", "text": text, "user_id": DEPLOYER, "channel_id": "C1",
                      "response_url": "http://127.0.0.1:9/never"})


def test_a_stale_timestamp_is_refused_with_401(client, pipeline):
    body = _command_body()
    answer = client.post("/slack/commands", data=body, headers=sign(body, int(time.time()) - 6 * 60))
    assert answer.status_code == 401
    assert "5 minutes" in answer.json["error"]
    assert pipeline.calls == []


def test_a_bad_signature_is_refused_with_401(client, pipeline):
    body = _command_body()
    answer = client.post("/slack/commands", data=body, headers=sign(body, secret="not-the-secret"))
    assert answer.status_code == 401
    assert answer.json == {"error": "bad Slack signature"}
    unsigned = client.post("/slack/commands", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    assert pipeline.calls == []


def test_a_signed_body_that_is_not_a_command_is_400(client, pipeline):
    for body in ("not a form at all %%%", urlencode({"text": "web"}), ""):
        answer = client.post("/slack/commands", data=body, headers=sign(body))
        assert answer.status_code == 400, body
        assert answer.json["error"].startswith("expected a Slack slash-command form")
    assert pipeline.calls == []


def test_a_body_that_is_not_utf8_is_400(client):
    raw = b"command=%2Fdeploy&text=\xff\xfe"
    headers = sign("ignored")
    answer = client.post("/slack/commands", data=raw, headers=headers)
    assert answer.status_code == 400
    assert answer.json == {"error": "the request body is not UTF-8"}


def test_deploy_is_acknowledged_then_announced_in_the_channel(slash, pipeline):
    ack = slash("/deploy", "web")
    assert ack.status_code == 200
    assert ack.json["response_type"] == "ephemeral" and "On it" in ack.json["text"]
    assert pipeline.calls == [("request_deploy", "web", "production", None, f"slack:{DEPLOYER}")]
    assert slash.answer["response_type"] == "in_channel"
    assert slash.answer["text"] == f"<@{DEPLOYER}> asked to deploy web `a1b2c3d` in production: deploy #1 is queued."


def test_deploy_a_ref_to_another_environment(slash, pipeline):
    slash("/deploy", "web feature/login to staging", user=STAGER)
    assert pipeline.calls == [("request_deploy", "web", "staging", "feature/login", f"slack:{STAGER}")]
    assert "deploy #1 is queued" in slash.answer["text"]


def test_the_single_command_form_does_the_same(slash, pipeline):
    slash("/mainline", "deploy web to staging")
    assert pipeline.calls == [("request_deploy", "web", "staging", None, f"slack:{DEPLOYER}")]


def test_rollback_to_a_release(slash, pipeline):
    slash("/rollback", "web production to 0f9e8d7")
    assert pipeline.calls == [("rollback", "web", "production", f"slack:{DEPLOYER}", "0f9e8d7")]
    assert slash.answer["text"] == (f"<@{DEPLOYER}> is rolling back web `0f9e8d7` in production: "
                                    "deploy #1 is rolling_back.")


def test_rollback_to_an_unknown_release_says_so_privately(slash):
    slash("/rollback", "web to nope")
    assert slash.answer == {"replace_original": False, "response_type": "ephemeral",
                            "text": ":grey_question: No release nope of web."}


def test_lock_and_unlock(slash, pipeline):
    slash("/lock", "web staging flaky integration tests")
    assert slash.answer["text"] == f":lock: <@{DEPLOYER}> locked web in staging: flaky integration tests"
    slash("/unlock", "web staging")
    assert slash.answer["text"] == f":unlock: <@{DEPLOYER}> unlocked web in staging."
    assert pipeline.calls == [("lock", "web", "staging", f"slack:{DEPLOYER}", "flaky integration tests"),
                              ("unlock", "web", "staging", f"slack:{DEPLOYER}")]


def test_unlocking_what_is_not_locked_shows_the_pipelines_reason(slash):
    slash("/unlock", "web")
    assert slash.answer["response_type"] == "ephemeral"
    assert slash.answer["text"] == ":warning: web in production is not locked."


def test_status_is_read_only_and_open_to_everyone(slash, pipeline):
    slash("/status", "", user=STRANGER)
    text = slash.answer["text"]
    assert slash.answer["response_type"] == "ephemeral"
    assert "*web* in production: live `a1b2c3d` · in sync" in text
    assert "`feedbee` queued (blocked: outside the deploy window)" in text
    assert pipeline.events == []


def test_history_lists_recent_deploys(slash):
    slash("/history", "web", user=STRANGER)
    assert slash.answer["text"] == ("Last deploys of *web*:\n"
                                    "• #7 production `a1b2c3d` live (2026-01-05T09:58:00Z → 2026-01-05T10:00:00Z)")


def test_freeze_and_unfreeze_by_an_admin(slash, pipeline):
    slash("/freeze", "end of year")
    assert slash.answer["text"] == f":snowflake: <@{DEPLOYER}> froze deploys: end of year"
    slash("/unfreeze")
    assert pipeline.calls == [("freeze", f"slack:{DEPLOYER}", "end of year"), ("unfreeze", f"slack:{DEPLOYER}")]


def test_help_is_answered_in_the_acknowledgement(slash, pipeline):
    ack = slash("/help")
    assert ack.json["response_type"] == "ephemeral"
    assert "`/rollback <service> [env] [to <release>]`" in ack.json["text"]
    assert slash.answers == []


def test_wrong_usage_gets_the_usage_line_not_a_stack_trace(slash, pipeline):
    ack = slash("/deploy", "web main to")
    assert ack.status_code == 200
    assert ack.json == {"response_type": "ephemeral", "text": "Usage: `/deploy <service> [ref] [to <env>]`"}
    assert pipeline.calls == []


def test_a_stranger_is_refused_privately_and_the_refusal_is_recorded(slash, pipeline):
    slash("/deploy", "web", user=STRANGER)
    assert pipeline.calls == []
    assert slash.answer["response_type"] == "ephemeral"
    assert slash.answer["text"] == (f":no_entry: You are not a deployer of web in production. "
                                    f"`.github/deploy.yml` lets <@{DEPLOYER}> do that.")
    assert pipeline.events == [{"service": "web", "environment": "production", "kind": "refused",
                                "message": slash.answer["text"].removeprefix(":no_entry: "), "by": f"slack:{STRANGER}"}]


def test_a_staging_deployer_may_not_touch_production(slash, pipeline):
    slash("/rollback", "web", user=STAGER)
    assert "not a deployer of web in production" in slash.answer["text"]
    assert pipeline.events[0]["kind"] == "refused"


def test_freeze_is_refused_to_someone_not_an_admin(slash, pipeline):
    slash("/freeze", "because", user=STRANGER)
    assert pipeline.calls == []
    assert slash.answer["text"] == (":no_entry: Only a Mainline admin may freeze; MAINLINE_ADMINS lists who is "
                                    "(ask one of them).")
    assert pipeline.events[0]["kind"] == "refused"


def test_an_unknown_service_or_environment_is_explained(slash):
    slash("/deploy", "billing")
    assert slash.answer["text"] == ":grey_question: No service called billing."
    slash("/deploy", "web to qa")
    assert slash.answer["text"] == "web has no environment `qa` (known: production, staging)."


def test_commands_outside_the_allowed_channels_are_refused(pipeline, reporter, standin):
    deps = SlackDeps(SECRET, pipeline, reporter, FixedClock(), run_later=lambda job: job(),
                     allowed_channels=frozenset({"CDEPLOYS"}))
    app = Flask("channels")
    app.register_blueprint(slack_commands.blueprint(deps))
    slash = Slash(app.test_client(), standin)
    ack = slash("/status", "", channel="CRANDOM")
    assert ack.json == {"response_type": "ephemeral", "text": "Mainline does not take commands in this channel."}
    slash("/status", "", channel="CDEPLOYS")
    assert "*web* in production" in slash.answer["text"]


def test_a_slow_pipeline_does_not_delay_the_acknowledgement(reporter, standin):
    held = threading.Event()
    slow = PipelineDouble(hold=held)
    deps = SlackDeps(SECRET, slow, reporter, FixedClock(), run_later=thread_pool_runner(2))
    app = Flask("slow")
    app.register_blueprint(slack_commands.blueprint(deps))
    slash = Slash(app.test_client(), standin)
    ack = slash("/deploy", "web")
    # Slack has its answer while the pipeline is still busy with the deploy.
    assert "On it" in ack.json["text"]
    assert slow.calls == [] and slash.answers == []
    held.set()
    deadline = time.monotonic() + 10
    while not slash.answers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "deploy #1 is queued" in slash.answer["text"]
