"""Shared fixtures for the Slack side: the Slack stand-in, a reporter on it, a pipeline double,
and a Flask app with both Slack blueprints mounted."""

from __future__ import annotations

import pytest
from flask import Flask
from slack_testkit import DEPLOYER, SECRET, TOKEN, FixedClock, PipelineDouble, Slash, fast_slack_api

from bot.infra.slack.web import SlackWeb
from bot.notify.slack_reporter import SlackReporter
from handlers.slack import actions as slack_actions
from handlers.slack import commands as slack_commands
from handlers.slack.common import SlackDeps
from sandbox.slack import SlackStandIn


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
    # The deployer of `web` is also an admin here (MAINLINE_ADMINS), so it may freeze.
    return SlackDeps(signing_secret=SECRET, pipeline=pipeline, chat=reporter, clock=clock, run_later=run_now,
                     admins=frozenset({f"slack:{DEPLOYER}"}))


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


# -- the real app on the real pipeline, Slack pointing at the stand-in --------------------------------

# octocat's PRs mention this Slack user (test_slack_pipeline_e2e.OCTOCAT).
E2E_OCTOCAT = "U0OCTOCAT"
# test_slack_pipeline_e2e.DEPLOYER, a deployer of every sample service and an admin.
E2E_DEPLOYER = "U0DEPLOYER"


@pytest.fixture
def slack_settings(tmp_path, standin):
    from bot.settings import load_settings

    return load_settings(
        database_url=f"sqlite:///{tmp_path}/mainline.db",
        queue_url=f"sqlite:///{tmp_path}/queue.db",
        state_dir=tmp_path / "state",
        lease_seconds=5,
        reconcile_seconds=1,
        slack_signing_secret=SECRET,
        slack_bot_token=TOKEN,
        slack_api_url=standin.url,
        slack_channel="#deploys",
        slack_users=f"octocat={E2E_OCTOCAT},hubot=U0HUBOT",
        admins=f"slack:{E2E_DEPLOYER}",  # the deployer may also freeze
    )


@pytest.fixture
def slack_wired(slack_settings):
    """bot.wiring.wire on the Slack settings: the real pipeline, store, queue and Slack reporter."""
    from bot.wiring import wire

    wired = wire(slack_settings)
    yield wired
    wired.slack.close()


@pytest.fixture
def bot(slack_settings, slack_wired):
    """The real Flask app, `create_app(settings, wire(settings))`, as a test client."""
    from bot.app import create_app

    return create_app(slack_settings, slack_wired).test_client()


@pytest.fixture
def sample_services(slack_settings):
    """Names of services a test deploys; their containers, images and HAProxy go at teardown."""
    import docker

    from bot.infra.targets.docker.haproxy import HAProxy

    made: list[tuple[str, int]] = []
    yield made
    client = docker.from_env()
    for service, port in made:
        for c in client.containers.list(all=True, filters={"label": f"mainline.service={service}"}):
            c.remove(force=True)
        HAProxy(slack_settings.state_dir, service, "production", f"127.0.0.1:{port}").stop()
        for image in client.images.list(name=f"{slack_settings.registry}/{service}"):
            client.images.remove(image.id, force=True)
    client.close()


@pytest.fixture
def mainline_cli(slack_settings, monkeypatch):
    """`mainline ARGS…` on the same database, as an operator at a terminal would run it."""
    from click.testing import CliRunner

    from bot.cli import main

    for name in ("GITHUB_TOKEN", "GITHUB_APP_ID", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAINLINE_DATABASE_URL", slack_settings.database_url)
    monkeypatch.setenv("MAINLINE_QUEUE_URL", slack_settings.queue_url)
    monkeypatch.setenv("MAINLINE_STATE_DIR", str(slack_settings.state_dir))

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return run
