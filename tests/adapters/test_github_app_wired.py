"""Mainline wired from its settings, as a team runs it, against a private repository on the GitHub
stand-in: a merge with an invalid .github/deploy.yml gets its failing `mainline/config` result
as a check run through the App (key read from GITHUB_APP_PRIVATE_KEY_PATH, git through the
installation token), or as a commit status with a personal token."""

from __future__ import annotations

import json
import os

import pytest
import requests

from bot import webhook
from bot.settings import SettingsError, load_settings
from sandbox.github import GitHubSandbox
from tests.conftest import SECRET

REPO = "acme/webapp"
VALID = """\
service: webapp
branch: master
environments:
  production: {target: docker, auto_deploy: true, replicas: 1, listen: "127.0.0.1:18081"}
"""
INVALID = VALID.replace("auto_deploy: true", "auto_deploy: true, strategy: teleport")


@pytest.fixture
def sandbox(tmp_path):
    sb = GitHubSandbox(tmp_path / "github", validate=True).start()
    sb.create_repo("acme", "webapp", {"README.md": "webapp\n", ".github/deploy.yml": VALID}, private=True)
    yield sb
    sb.stop()
    assert sb.violations == [], "the stand-in saw a request GitHub would refuse"


def wired_to(tmp_path, sandbox, **github):
    from bot.app import create_app
    from bot.wiring import wire

    settings = load_settings(
        database_url=f"sqlite:///{tmp_path}/mainline.db", queue_url=f"sqlite:///{tmp_path}/queue.db",
        state_dir=tmp_path / "state", github_webhook_secret=SECRET, github_api_url=sandbox.url,
        github_write_interval=0, **github)
    wired = wire(settings)
    return wired, create_app(settings, wired).test_client()


def merge_invalid_config(sandbox, wired, client) -> str:
    sandbox.create_branch(REPO, "canary", sandbox.head(REPO, "master"))
    sandbox.push_commit(REPO, "canary", {".github/deploy.yml": INVALID}, "Try canary deploys")
    number = sandbox.open_pull(REPO, "canary", "master", "Try canary deploys")
    sha = sandbox.merge_pull(REPO, number)
    [merged] = [d for d in sandbox.deliveries if d.event == "pull_request" and d.action == "closed"]
    body = json.dumps(merged.payload).encode()
    answer = client.post("/github/webhook", data=body, headers={
        "X-GitHub-Event": merged.event, "X-GitHub-Delivery": merged.id,
        "X-Hub-Signature-256": webhook.sign(SECRET, body), "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    wired.process_delivery(merged.id)
    return sha


def read(sandbox, path: str) -> dict:
    answer = requests.get(f"{sandbox.url}/repos/{REPO}{path}", headers={"Authorization": "token reader"},
                          timeout=10)
    answer.raise_for_status()
    return answer.json()


def test_an_app_with_its_key_in_a_file_reads_the_private_repo_and_writes_a_check_run(tmp_path, sandbox):
    app, pem = sandbox.apps.register("mainline", permissions={
        "contents": "write", "checks": "write", "statuses": "write", "pull_requests": "write",
        "issues": "write", "deployments": "write", "metadata": "read"})
    sandbox.apps.install(app, "acme")
    key = tmp_path / "app.pem"
    key.write_text(pem)
    os.chmod(key, 0o600)

    wired, client = wired_to(tmp_path, sandbox, github_app_id=app.id, github_app_private_key_path=key)
    sha = merge_invalid_config(sandbox, wired, client)

    [run] = [r for r in read(sandbox, f"/commits/{sha}/check-runs")["check_runs"] if r["name"] == "mainline/config"]
    assert (run["status"], run["conclusion"]) == ("completed", "failure")
    assert "line 4: environments.production.strategy" in run["output"]["title"] + run["output"]["summary"]
    assert sandbox.apps.issued  # git and the API went with installation tokens
    for config in (tmp_path / "state").rglob("config"):
        assert not any(token in config.read_text(errors="replace") for token in sandbox.apps.issued)


def test_a_personal_token_gets_the_config_result_as_a_commit_status(tmp_path, sandbox, caplog):
    sandbox.apps.personal["ghp_machineuser"] = "deploy-bot"
    wired, client = wired_to(tmp_path, sandbox, github_token="ghp_machineuser")
    assert "fall back to commit statuses" in caplog.text  # said at start-up

    sha = merge_invalid_config(sandbox, wired, client)

    statuses = {s["context"]: s for s in read(sandbox, f"/commits/{sha}/status")["statuses"]}
    assert statuses["mainline/config"]["state"] == "failure"
    assert "line 4" in statuses["mainline/config"]["description"]
    assert read(sandbox, f"/commits/{sha}/check-runs")["total_count"] == 0


def test_an_unreadable_key_file_stops_start_up_naming_the_setting(tmp_path):
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(SettingsError, match=r"GITHUB_APP_PRIVATE_KEY_PATH: cannot read .*nowhere.pem"):
        load_settings(github_app_id=1, github_app_private_key_path=missing)
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    with pytest.raises(SettingsError, match=r"is not a PEM private key"):
        load_settings(github_app_id=1, github_app_private_key_path=not_a_key)


def test_an_inline_key_and_a_key_file_together_are_refused(tmp_path):
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(SettingsError, match="both set; set only one"):
        load_settings(github_app_id=1, github_app_private_key_path=key,
                      github_app_private_key=key.read_text())
