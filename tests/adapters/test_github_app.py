"""Mainline as a GitHub App against a stand-in as strict as GitHub: git reads a private
repository with the installation's token (renewed like the API's, never written to disk), check
runs go through the App, a personal token's check runs fall back to commit statuses, and a
permission the installation lacks is named in the error."""

from __future__ import annotations

import logging
import subprocess

import pytest
import requests

from bot.domain.github import CheckRunReport
from bot.infra.git import GitClient, GitError
from bot.infra.github.client import GitHubAdapter, GitHubConfig
from bot.infra.github.errors import PermissionDenied
from bot.infra.github.git_auth import GitCredentials
from sandbox.github import GitHubSandbox

REPO = "acme/secret"
PERMISSIONS = {"contents": "write", "checks": "write", "statuses": "write", "pull_requests": "write",
               "issues": "write", "deployments": "write", "metadata": "read"}


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sandbox(tmp_path):
    sb = GitHubSandbox(tmp_path / "github", validate=True).start()
    sb.create_repo("acme", "secret", {"README.md": "private\n", "app.txt": "v1\n"}, private=True)
    yield sb
    sb.stop()
    assert sb.violations == []


def app_host(sb: GitHubSandbox, permissions: dict, token: str | None = None, clock=None) -> GitHubAdapter:
    app, key = sb.apps.register("mainline", permissions=PERMISSIONS)
    sb.apps.install(app, "acme", permissions=permissions)
    config = GitHubConfig(base_url=sb.url, app_id=app.id, private_key=key, token=token, write_interval=0)
    return GitHubAdapter(config, clock=clock) if clock else GitHubAdapter(config)


def api(sb: GitHubSandbox, path: str) -> dict:
    """What anyone reading the repository sees (a lenient reader token)."""
    answer = requests.get(f"{sb.url}/repos/{REPO}{path}", headers={"Authorization": "token reader"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def test_the_stand_in_refuses_anonymous_git_on_a_private_repository(sandbox, tmp_path):
    anonymous = GitClient(tmp_path / "anon")
    with pytest.raises(GitError):
        anonymous.head(f"{sandbox.url}/{REPO}.git", "master")


def test_app_mode_reads_a_private_repository_with_renewed_installation_tokens(sandbox, tmp_path, caplog):
    clock = Clock()
    sandbox.apps.token_lifetime = 330  # GitHub's hour, shortened; Mainline renews 5 minutes early
    host = app_host(sandbox, PERMISSIONS, clock=clock)
    git = GitClient(tmp_path / "git", credentials=GitCredentials(sandbox.url, host))
    url = f"{sandbox.url}/{REPO}.git"
    head = sandbox.head(REPO, "master")

    assert git.head(url, "master") == head
    assert git.read_file(url, head, "app.txt") == "v1\n"
    issued = set(sandbox.apps.issued)
    assert len(issued) == 1

    # Later: GitHub's token has expired; Mainline takes a new one, as for the API.
    sandbox.apps.expire_tokens()
    clock.now += 60
    newer = sandbox.push_commit(REPO, "master", {"app.txt": "v2\n"}, "v2")
    assert git.read_file(url, newer, "app.txt") == "v2\n"  # a fetch into the mirror
    assert len(sandbox.apps.issued) == 2

    mirror_config = "\n".join(p.read_text() for p in (tmp_path / "git").glob("*.git/config"))
    assert mirror_config and url in mirror_config
    logged = caplog.text
    for token in sandbox.apps.issued:
        assert token not in mirror_config and token not in logged


def test_a_token_only_goes_to_the_configured_github(sandbox, tmp_path):
    host = app_host(sandbox, PERMISSIONS)
    credentials = GitCredentials(sandbox.url, host)
    assert credentials(f"{sandbox.url}/{REPO}.git")
    for elsewhere in (f"http://127.0.0.2:1/{REPO}.git", f"{sandbox.url}.evil.example/{REPO}.git",
                      f"{sandbox.url}/acme/../../etc.git", f"{sandbox.url}/{REPO}", f"{sandbox.url}/a/b/c.git"):
        assert credentials(elsewhere) is None, elsewhere


def test_an_installation_without_contents_cannot_clone(sandbox, tmp_path):
    host = app_host(sandbox, {"checks": "write", "metadata": "read"})
    git = GitClient(tmp_path / "git", credentials=GitCredentials(sandbox.url, host))
    with pytest.raises(GitError):
        git.head(f"{sandbox.url}/{REPO}.git", "master")


def test_a_personal_token_cannot_write_check_runs_and_mainline_posts_statuses(sandbox, caplog):
    sandbox.apps.personal["ghp_machineuser"] = "deploy-bot"
    sha = sandbox.head(REPO, "master")
    refused = requests.post(f"{sandbox.url}/repos/{REPO}/check-runs", json={"name": "x", "head_sha": sha},
                            headers={"Authorization": "token ghp_machineuser"}, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Resource not accessible by personal access token"

    with caplog.at_level(logging.INFO, "mainline.github"):
        host = GitHubAdapter(GitHubConfig(base_url=sandbox.url, token="ghp_machineuser", write_interval=0))
        assert "GITHUB_TOKEN without a GitHub App" in caplog.text  # said at start-up
        for verdict in ("failure", "success"):
            host.upsert_check_run(REPO, CheckRunReport(
                "mainline/config", sha, conclusion=verdict, title=f"config {verdict}",
                details_url="http://127.0.0.1:8000/"))

    statuses = api(sandbox, f"/commits/{sha}/status")["statuses"]
    assert [(s["context"], s["state"], s["description"]) for s in statuses] == [
        ("mainline/config", "success", "config success")]
    assert api(sandbox, f"/commits/{sha}/check-runs")["total_count"] == 0
    assert caplog.text.count("posted as commit statuses from now on") == 1
    # Our own statuses are not CI: they never gate a deploy.
    assert host.ci_contexts(REPO, sha) == []


def test_with_a_token_and_an_app_check_runs_go_through_the_app(sandbox):
    sandbox.apps.personal["ghp_machineuser"] = "deploy-bot"
    host = app_host(sandbox, PERMISSIONS, token="ghp_machineuser")
    sha = sandbox.head(REPO, "master")
    run = host.upsert_check_run(REPO, CheckRunReport("mainline/config", sha, conclusion="success", title="ok"))
    assert run.id > 0
    [shown] = api(sandbox, f"/commits/{sha}/check-runs")["check_runs"]
    assert (shown["name"], shown["conclusion"]) == ("mainline/config", "success")
    # git too presents the installation's token, not the personal one.
    assert GitCredentials(sandbox.url, host)(f"{sandbox.url}/{REPO}.git") in sandbox.apps.issued


def test_a_missing_app_permission_is_named(sandbox):
    without_checks = {k: v for k, v in PERMISSIONS.items() if k != "checks"}
    host = app_host(sandbox, without_checks)
    sha = sandbox.head(REPO, "master")
    with pytest.raises(PermissionDenied, match=r"lacks the permission checks: (read|write)") as raised:
        host.upsert_check_run(REPO, CheckRunReport("mainline/config", sha, conclusion="success"))
    assert set(raised.value.permissions) == {"checks"}
    assert api(sandbox, f"/commits/{sha}/status")["statuses"] == []


def test_git_sees_no_token_in_argv(sandbox, tmp_path, monkeypatch):
    host = app_host(sandbox, PERMISSIONS)
    git = GitClient(tmp_path / "git", credentials=GitCredentials(sandbox.url, host))
    seen: list[list[str]] = []
    real = subprocess.run

    def spy(args, *a, **kw):
        seen.append(list(args))
        return real(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    git.head(f"{sandbox.url}/{REPO}.git", "master")
    tokens = list(sandbox.apps.issued)
    assert tokens and seen
    assert not any(t in arg for t in tokens for argv in seen for arg in argv)
