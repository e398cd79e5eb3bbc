"""Attacks on the GitHub App side, through the public surface: an installation token sent
anywhere but the repository's own URL, one left in a git error, argv or on disk, a form
webhook whose signature covers something other than the bytes sent, a forged or hostile
set-up callback, an env file poisoned through GitHub's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import webhook
from bot.cli_setup import SetupError, write_env
from bot.errors import NotFoundError
from bot.infra.git import GitClient, GitError
from bot.infra.github.client import GitHubAdapter, GitHubConfig
from bot.infra.github.git_auth import GitCredentials
from sandbox.github import GitHubSandbox
from sandbox.github_webhooks import encode
from tests.conftest import SECRET

REPO = "acme/secret"
PUSH = json.loads((Path(__file__).resolve().parents[2] / "sandbox/contracts/examples/push.json").read_text())


@pytest.fixture
def sandbox(tmp_path):
    sb = GitHubSandbox(tmp_path / "github", validate=True).start()
    sb.create_repo("acme", "secret", {"README.md": "private\n"}, private=True)
    sb.create_repo("other", "repo", {"README.md": "someone else's\n"}, private=True)
    yield sb
    sb.stop()
    assert sb.violations == []


def app_host(sb: GitHubSandbox, permissions: dict) -> GitHubAdapter:
    app, key = sb.apps.register("mainline", permissions=permissions)
    sb.apps.install(app, "acme")
    return GitHubAdapter(GitHubConfig(base_url=sb.url, app_id=app.id, private_key=key, write_interval=0))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/acme/secret.git",  # another host
    "{base}.attacker.example/acme/secret.git",  # a host that merely starts like ours
    "{base}@attacker.example/acme/secret.git",  # userinfo trick
    "{base}/acme/secret.git/../../other/repo.git",  # a path that walks out
    "{base}/acme/secret",  # not a clone URL
    "{base}/a/b/c.git",  # not owner/name
    "file:///tmp/acme/secret.git",
])
def test_no_token_is_handed_out_for_a_url_that_is_not_the_repositorys_own(sandbox, url):
    host = app_host(sandbox, {"contents": "read", "metadata": "read"})
    assert GitCredentials(sandbox.url, host)(url.format(base=sandbox.url)) is None
    assert not sandbox.apps.issued  # not even asked for


def test_an_installation_token_never_reaches_a_git_error(sandbox, tmp_path):
    host = app_host(sandbox, {"contents": "read", "metadata": "read"})
    git = GitClient(tmp_path / "git", credentials=GitCredentials(sandbox.url, host))
    assert git.head(f"{sandbox.url}/{REPO}.git", "master")
    sandbox.apps.expire_tokens()
    with pytest.raises(GitError) as refused:  # the token Mainline still holds is dead on GitHub
        git.checkout(f"{sandbox.url}/{REPO}.git", "0" * 40, tmp_path / "out")
    message = str(refused.value)
    assert sandbox.apps.issued and not any(token in message for token in sandbox.apps.issued)


def test_a_repository_outside_the_installation_is_not_readable(sandbox, tmp_path):
    host = app_host(sandbox, {"contents": "write", "metadata": "read"})
    git = GitClient(tmp_path / "git", credentials=GitCredentials(sandbox.url, host))
    with pytest.raises(NotFoundError, match=r"installation of other/repo"):
        git.head(f"{sandbox.url}/other/repo.git", "master")


def test_a_form_signed_over_a_different_payload_is_refused(client):
    body, content_type = encode(PUSH, "form")
    tampered = body.replace(b"payload=", b"payload=%7B%7D&zen=", 1)
    answer = client.post("/github/webhook", data=tampered, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "tampered", "Content-Type": content_type,
        "X-Hub-Signature-256": webhook.sign(SECRET, body)})
    assert answer.status_code == 401


def test_a_json_body_labelled_as_a_form_is_not_read_as_json(client):
    body = json.dumps(PUSH).encode()
    answer = client.post("/github/webhook", data=body, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "relabelled",
        "Content-Type": "application/x-www-form-urlencoded", "X-Hub-Signature-256": webhook.sign(SECRET, body)})
    assert answer.status_code == 400


def test_the_env_file_cannot_be_poisoned_through_values(tmp_path):
    env = tmp_path / "mainline.env"
    env.write_text("MAINLINE_ADMINS=github:octocat\n")
    write_env(env, {"GITHUB_WEBHOOK_SECRET": "s3cret\nMAINLINE_ADMINS=github:eve", "GITHUB_APP_ID": "12"})
    lines = env.read_text().splitlines()
    assert [ln for ln in lines if ln.startswith("MAINLINE_ADMINS=")] == ["MAINLINE_ADMINS=github:octocat"]
    assert len(lines) == 3


def test_an_answer_that_is_not_an_app_is_refused(tmp_path, monkeypatch):
    import requests

    from bot import cli_setup

    class Answer:
        status_code = 201

        @staticmethod
        def json():
            return {"id": "1\nMAINLINE_ADMINS=github:eve", "pem": "x", "webhook_secret": "y"}

    monkeypatch.setattr(requests, "post", lambda *a, **k: Answer())
    with pytest.raises(SetupError, match="not an App"):
        cli_setup.exchange("http://127.0.0.1:9", "code")
