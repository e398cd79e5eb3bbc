"""A merge carrying an invalid .github/deploy.yml deploys nothing, and the merge commit gets a
failing `mainline/config` check run that names the bad line. Driven through the local GitHub
stand-in: a real merge, its real signed webhook into the bot, the bot's REST calls back."""

from __future__ import annotations

import json

import pytest
import requests

from bot import webhook
from bot.settings import load_settings
from sandbox.github import GitHubSandbox
from tests.conftest import SECRET, authed

REPO = "acme/webapp"
VALID = """\
service: webapp
branch: master
environments:
  production: {target: docker, auto_deploy: true, replicas: 1, listen: "127.0.0.1:18081"}
"""
# Line 4 names a strategy that does not exist; line 6 a duration that is not one.
INVALID = """\
service: webapp
branch: master
environments:
  production: {target: docker, auto_deploy: true, strategy: teleport}
health:
  bake: a while
"""


@pytest.fixture
def sandbox(tmp_path):
    sb = GitHubSandbox(tmp_path / "github", validate=True).start()
    sb.create_repo("acme", "webapp", {"README.md": "webapp\n", ".github/deploy.yml": VALID})
    yield sb
    sb.stop()
    assert sb.violations == [], "the stand-in saw a request GitHub would refuse"


@pytest.fixture
def bot(tmp_path, sandbox):
    from bot.app import create_app
    from bot.wiring import wire

    settings = load_settings(
        database_url=f"sqlite:///{tmp_path}/mainline.db", queue_url=f"sqlite:///{tmp_path}/queue.db",
        state_dir=tmp_path / "state", github_webhook_secret=SECRET, github_api_url=sandbox.url,
        github_token="t", github_write_interval=0,
    )
    wired = wire(settings)
    return wired, authed(create_app(settings, wired).test_client(), wired)  # reads with a token


def deliver(client, wired, delivery) -> None:
    """What GitHub would post for this event, signed; then the worker's side of the inbox."""
    body = json.dumps(delivery.payload).encode()
    response = client.post("/github/webhook", data=body, headers={
        "X-GitHub-Event": delivery.event, "X-GitHub-Delivery": delivery.id,
        "X-Hub-Signature-256": webhook.sign(SECRET, body), "Content-Type": "application/json"})
    assert response.status_code == 202, response.get_data(as_text=True)
    wired.process_delivery(delivery.id)


def test_merge_with_an_invalid_config_deploys_nothing_and_fails_a_check_naming_the_line(sandbox, bot):
    wired, client = bot
    sandbox.create_branch(REPO, "canary", sandbox.head(REPO, "master"))
    sandbox.push_commit(REPO, "canary", {".github/deploy.yml": INVALID}, "Try canary deploys")
    number = sandbox.open_pull(REPO, "canary", "master", "Try canary deploys")
    sha = sandbox.merge_pull(REPO, number)
    [merged] = [d for d in sandbox.deliveries if d.event == "pull_request" and d.action == "closed"]
    deliver(client, wired, merged)

    assert wired.pipeline.status() == []
    assert client.get("/api/services").json == []
    runs = requests.get(f"{sandbox.url}/repos/{REPO}/commits/{sha}/check-runs",
                        headers={"Authorization": "token reader"}, timeout=10).json()["check_runs"]
    [run] = [r for r in runs if r["name"] == "mainline/config"]
    assert (run["status"], run["conclusion"]) == ("completed", "failure")
    text = run["output"]["title"] + "\n" + run["output"]["summary"]
    assert "line 4: environments.production.strategy" in text
    assert "line 6: health.bake" in text and "not a duration" in text
    assert "will not go ahead" in run["output"]["summary"]
