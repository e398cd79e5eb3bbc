"""`mainline setup github` end to end against the GitHub stand-in: the command serves the page
that posts the manifest, the test plays the browser (posts it to the stand-in's new-App page and
follows GitHub's redirect to the local callback), the command exchanges the code, and Mainline
then runs as the App it wrote into the env file."""

from __future__ import annotations

import html
import json
import re
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.domain.github import CheckRunReport
from bot.notify.reporting import github_host
from bot.settings import load_settings
from sandbox.github import GitHubSandbox

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "https://deploy.example.com"
OLD_KEY = '"-----BEGIN RSA PRIVATE KEY-----\nold\n-----END RSA PRIVATE KEY-----"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key] = json.loads(value) if value.startswith('"') else value
    return values


def browse(url: str) -> str:
    """GET the command's page once it listens."""
    for _ in range(100):
        try:
            return requests.get(url, timeout=5).text
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def sandbox(tmp_path):
    sb = GitHubSandbox(tmp_path / "github", validate=True).start()
    sb.create_repo("acme", "webapp", {"README.md": "webapp\n"}, private=True)
    yield sb
    sb.stop()
    assert sb.violations == []


def test_setup_github_registers_the_app_and_mainline_runs_as_it(tmp_path, sandbox):
    env_file = tmp_path / "conf" / "mainline.env"
    env_file.parent.mkdir()
    env_file.write_text(f"MAINLINE_PUBLIC_URL={PUBLIC}\nGITHUB_APP_PRIVATE_KEY={OLD_KEY}\nKEEP=1\n")
    port = free_port()
    done: dict = {}

    def run() -> None:
        done["result"] = CliRunner().invoke(main, [
            "setup", "github", "--env-file", str(env_file), "--public-url", PUBLIC, "--api-url", sandbox.url,
            "--web-url", sandbox.url, "--port", str(port), "--no-browser", "--timeout", "60",
            "--definition", str(ROOT / "github-app.yml")], catch_exceptions=False)

    command = threading.Thread(target=run)
    command.start()

    # The browser: the page posts the manifest to GitHub, which redirects to the callback.
    page = browse(f"http://127.0.0.1:{port}/")
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page).group(1))
    manifest_text = html.unescape(re.search(r'name="manifest" value="([^"]+)"', page).group(1))
    assert action.startswith(f"{sandbox.url}/settings/apps/new?state=")
    created = requests.post(action, data={"manifest": manifest_text}, allow_redirects=False, timeout=10)
    assert created.status_code == 302, created.text
    callback = created.headers["Location"]
    assert callback.startswith(f"http://127.0.0.1:{port}/callback?code=")
    assert requests.get(callback, timeout=10).status_code == 200
    command.join(60)
    result = done["result"]
    assert result.exit_code == 0, result.output

    # What the command wrote, and how.
    [app] = sandbox.apps.apps.values()
    env = read_env(env_file)
    key_file = Path(env["GITHUB_APP_PRIVATE_KEY_PATH"])
    assert env["GITHUB_APP_ID"] == str(app.id) and env["GITHUB_WEBHOOK_SECRET"] == app.webhook_secret
    assert env["KEEP"] == "1" and "GITHUB_APP_PRIVATE_KEY" not in env
    assert "BEGIN" in key_file.read_text() and key_file.parent == env_file.parent
    for written in (key_file, env_file):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
    for secret in (app.webhook_secret, app.client_secret, key_file.read_text().splitlines()[1]):
        assert secret not in result.output
    assert f"Open http://127.0.0.1:{port}/" in result.output and "installations/new" in result.output

    # The App asks for what github-app.yml lists, and GitHub posts webhooks to Mainline.
    definition = yaml.safe_load((ROOT / "github-app.yml").read_text())
    assert app.permissions == {k: v["access"] for k, v in definition["permissions"].items()}
    assert app.events == [e["name"] for e in definition["events"]]
    assert app.hook_url == f"{PUBLIC}/github/webhook"
    # A code is good once.
    code = callback.split("code=")[1].split("&")[0]
    assert requests.post(f"{sandbox.url}/app-manifests/{code}/conversions", timeout=10).status_code == 404

    # Installed, Mainline runs as the App from those settings (its JWT checked against the App's key).
    sandbox.apps.install(app, "acme")
    settings = load_settings(github_api_url=sandbox.url, github_app_id=int(env["GITHUB_APP_ID"]),
                             github_app_private_key_path=key_file, github_write_interval=0)
    host = github_host(settings)
    assert host.bot_login() == f"{app.slug}[bot]"
    sha = sandbox.head("acme/webapp", "master")
    host.upsert_check_run("acme/webapp", CheckRunReport("mainline/config", sha, conclusion="success", title="ok"))
    assert [r.name for r in sandbox.repo("acme/webapp").check_runs.values()] == ["mainline/config"]


def test_a_callback_with_another_state_is_refused(tmp_path, sandbox):
    port = free_port()
    done: dict = {}

    def run() -> None:
        done["result"] = CliRunner().invoke(main, [
            "setup", "github", "--env-file", str(tmp_path / "x.env"), "--public-url", PUBLIC, "--api-url",
            sandbox.url, "--port", str(port), "--no-browser", "--timeout", "2"], catch_exceptions=False)

    command = threading.Thread(target=run)
    command.start()
    browse(f"http://127.0.0.1:{port}/")
    forged = requests.get(f"http://127.0.0.1:{port}/callback?code=abc&state=not-yours", timeout=5)
    assert forged.status_code == 400
    command.join(30)
    result = done["result"]
    assert result.exit_code != 0 and "did not redirect back" in result.output
    assert not (tmp_path / "x.env").exists() and not sandbox.apps.apps
