"""Settings are validated once at start-up; a bad or missing one stops the process naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.settings import SettingsError, load_settings


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MAINLINE_", "GITHUB_", "SLACK_"))}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=dict(clean, **env), capture_output=True,
                          text=True, timeout=60)


def test_invalid_setting_stops_the_process_with_its_name(tmp_path):
    proc = run("status", MAINLINE_DATABASE_URL="not-a-url")
    assert proc.returncode == 2
    assert "MAINLINE_DATABASE_URL" in proc.stderr and "must be a URL" in proc.stderr


def test_serve_without_webhook_secret_names_the_missing_setting(tmp_path):
    proc = run("serve", MAINLINE_DATABASE_URL=f"sqlite:///{tmp_path}/m.db")
    assert proc.returncode == 2
    assert "GITHUB_WEBHOOK_SECRET" in proc.stderr


def test_bad_values_are_named():
    with pytest.raises(SettingsError) as err:
        load_settings(lease_seconds=-1, github_api_url="ftp://x", slack_users="octocat")
    message = str(err.value.code)
    assert "MAINLINE_LEASE_SECONDS" in message and "GITHUB_API_URL" in message and "MAINLINE_SLACK_USERS" in message


def test_secrets_do_not_show_in_the_settings_repr():
    settings = load_settings(github_token="ghp_supersecret", slack_bot_token="xoxb-secret")
    assert "supersecret" not in repr(settings) and "xoxb-secret" not in repr(settings)


def test_status_on_an_empty_database_says_so(tmp_path):
    proc = run("status", MAINLINE_DATABASE_URL=f"sqlite:///{tmp_path}/m.db",
               MAINLINE_QUEUE_URL=f"sqlite:///{tmp_path}/q.db", MAINLINE_STATE_DIR=str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no services yet"
