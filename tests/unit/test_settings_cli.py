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
                          check=False, text=True, timeout=60)


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


def test_unknown_log_format_is_named(tmp_path):
    proc = run("status", MAINLINE_LOG_FORMAT="xml", MAINLINE_DATABASE_URL=f"sqlite:///{tmp_path}/m.db")
    assert proc.returncode == 2
    assert "MAINLINE_LOG_FORMAT" in proc.stderr


def test_json_log_format_prints_one_json_object_per_line(tmp_path):
    import json
    import signal
    import time

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MAINLINE_", "GITHUB_", "SLACK_"))}
    env = dict(clean, MAINLINE_LOG_FORMAT="json", MAINLINE_DATABASE_URL=f"sqlite:///{tmp_path}/m.db",
               MAINLINE_QUEUE_URL=f"sqlite:///{tmp_path}/q.db", MAINLINE_STATE_DIR=str(tmp_path / "s"))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while "worker started" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"worker started", "worker stopped"} <= {line["message"].split(" (")[0] for line in lines}
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert line["time"].endswith("+00:00") and line["level"] in ("DEBUG", "INFO", "WARNING", "ERROR")
