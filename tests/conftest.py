"""Fixtures shared by every test: settings on a temporary state dir, the wired app, a local
git repository with a deploy config, and a guard that fails a test on an unexpected ERROR log."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from bot.settings import load_settings

SECRET = "It's a Secret to Everybody"

DEPLOY_YML = """\
service: {service}
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    replicas: 1
    listen: "127.0.0.1:{port}"
  staging:
    target: docker
    branches: ["feature/*"]
    listen: "127.0.0.1:{port}"
health: {{path: /health, interval: 0.2s, failures: 2, bake: 1s}}
rollback: {{auto: true, revert: push}}
"""


# A Rails migration that drops a column: what the migrations gate calls contract.
DROP_EMAIL = ("class DropEmail < ActiveRecord::Migration[7.1]\n"
              "  def change\n    remove_column :users, :email\n  end\nend\n")


@pytest.fixture(autouse=True)
def fail_on_error_logs(caplog):
    """A test fails when something logs at ERROR that the test did not expect."""
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR
              and not getattr(r, "expected", False)]
    if errors and not getattr(caplog, "errors_expected", False):
        pytest.fail("unexpected ERROR log: " + "; ".join(r.getMessage() for r in errors))


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        database_url=f"sqlite:///{tmp_path}/mainline.db",
        queue_url=f"sqlite:///{tmp_path}/queue.db",
        state_dir=tmp_path / "state",
        github_webhook_secret=SECRET,
        lease_seconds=5,
        reconcile_seconds=1,
    )


@pytest.fixture
def wired(settings):
    from bot.wiring import wire

    return wire(settings)


@pytest.fixture
def mainline(settings, monkeypatch):
    """Run `mainline ARGS…` (click's runner, in process) against the same database and state dir
    as the `wired` fixture, as an operator on the host; returns click's Result."""
    from click.testing import CliRunner

    from bot.cli import main

    for name in ("GITHUB_TOKEN", "GITHUB_APP_ID", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAINLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MAINLINE_QUEUE_URL", settings.queue_url)
    monkeypatch.setenv("MAINLINE_STATE_DIR", str(settings.state_dir))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def client(settings, wired):
    from bot.app import create_app

    return create_app(settings, wired).test_client()


def bearer(store, scope: str = "read") -> dict[str, str]:
    """An `Authorization` header with a new API token of `scope`, made as `mainline tokens create`
    makes one: how a team's script reads the API."""
    import uuid

    from bot.auth import ApiTokens

    token = ApiTokens(store).create(f"test-{scope}-{uuid.uuid4().hex[:8]}", scope)
    return {"Authorization": f"Bearer {token}"}


def authed(client, wired_or_store, scope: str = "read"):
    """`client` sending a new API token of `scope` with every request; returns the client."""
    store = getattr(wired_or_store, "store", wired_or_store)
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(store, scope)["Authorization"]
    return client


@pytest.fixture
def reader(client, wired):
    """The app's test client holding a read API token."""
    return authed(client, wired)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "Octo Cat", "GIT_AUTHOR_EMAIL": "octocat@example.com",
                               "GIT_COMMITTER_NAME": "Octo Cat", "GIT_COMMITTER_EMAIL": "octocat@example.com",
                               "PATH": "/usr/bin:/bin", "HOME": str(cwd)}).stdout.strip()


class LocalRepo:
    """A bare repository on disk (clone URL = its path) and a work tree that pushes to it."""

    def __init__(self, root: Path, service: str = "web", port: int = 18080):
        self.bare = root / "origin.git"
        self.work = root / "work"
        git("init", "--quiet", "--bare", "--initial-branch=master", str(self.bare), cwd=root)
        git("clone", "--quiet", str(self.bare), str(self.work), cwd=root)
        git("checkout", "--quiet", "-b", "master", cwd=self.work)
        self.write(".github/deploy.yml", DEPLOY_YML.format(service=service, port=port))

    @property
    def clone_url(self) -> str:
        return str(self.bare)

    def write(self, path: str, text: str) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, message: str, files: dict[str, str] | None = None, branch: str = "master") -> str:
        for path, text in (files or {}).items():
            self.write(path, text)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture
def local_repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    return LocalRepo(root)


# The GitHub stand-in world, for every directory whose tests drive the bot the way GitHub would.
from tests.e2e.github_world import world  # noqa: E402, F401 - a shared fixture, found here by pytest
