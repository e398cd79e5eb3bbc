"""`/bisect <service> [env]` in Slack: a deployer asks which commit of a release reverted in full
broke it; anyone else is refused privately."""

from slack_testkit import DEPLOYER, STRANGER


def test_a_deployer_asks_for_a_search_and_the_channel_hears_it(slash, pipeline):
    ack = slash("/bisect", "web")
    assert ack.status_code == 200
    assert pipeline.calls == [("bisect", "web", "production", f"slack:{DEPLOYER}")]
    assert slash.answer["response_type"] == "in_channel"
    assert slash.answer["text"] == (f":mag_right: <@{DEPLOYER}> asked which of the 3 commits of web `a1b2c3d` broke "
                                    "production; the deploy card follows the search.")


def test_the_mainline_form_names_the_environment(slash, pipeline):
    slash("/mainline", "bisect web staging")
    assert pipeline.calls == [("bisect", "web", "staging", f"slack:{DEPLOYER}")]


def test_a_stranger_may_not_start_a_search(slash, pipeline):
    slash("/bisect", "web", user=STRANGER)
    assert pipeline.calls == []
    assert slash.answer["response_type"] == "ephemeral" and "not a deployer" in slash.answer["text"]


def test_bisect_takes_one_environment_at_most(slash, pipeline):
    ack = slash("/bisect", "web production staging")
    assert pipeline.calls == []
    assert ack.json == {"response_type": "ephemeral", "text": "Usage: `/bisect <service> [env]`"}
