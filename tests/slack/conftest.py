"""Shared fixtures for the Slack side: the Slack stand-in, a reporter on it, a pipeline double,
and a Flask app with both Slack blueprints mounted."""

from __future__ import annotations

import pytest
from flask import Flask

from bot.adapters.slack import SlackReporter, SlackWeb
from bot.sandbox.slack import SlackStandIn
from handlers import slack_actions, slack_commands
from handlers.slack_common import SlackDeps
from slack_testkit import SECRET, TOKEN, FixedClock, PipelineDouble, Slash, fast_slack_api


@pytest.fixture(scope="session")
def standin_server():
    with SlackStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def standin(standin_server):
    standin_server.reset()
    yield standin_server
    assert standin_server.violations == [], "the Slack stand-in saw malformed calls"


@pytest.fixture
def reporter(standin):
    rep = SlackReporter(SlackWeb(TOKEN, standin.url, policy=fast_slack_api), "#deploys",
                        slack_users={"octocat": "U0OCTOCAT"}, retry_pause=0.05)
    yield rep
    rep.close()


@pytest.fixture
def pipeline():
    return PipelineDouble()


@pytest.fixture
def clock():
    return FixedClock()


def run_now(job):
    """Run the slow part inline, so a test sees its answer as soon as the request returns."""
    job()


@pytest.fixture
def deps(pipeline, reporter, clock):
    return SlackDeps(signing_secret=SECRET, pipeline=pipeline, chat=reporter, clock=clock, run_later=run_now)


@pytest.fixture
def app(deps):
    flask_app = Flask("mainline-slack-test")
    flask_app.register_blueprint(slack_commands.blueprint(deps))
    flask_app.register_blueprint(slack_actions.blueprint(deps))
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()

@pytest.fixture
def slash(client, standin):
    return Slash(client, standin)
