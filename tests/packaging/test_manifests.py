"""slack-app.yml declares what Mainline answers and needs: every slash command it knows (all to
/slack/commands), the card buttons' interactivity URL (/slack/actions), and exactly the scopes the
doctor checks and the Slack stand-in grants."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.doctor.services import SLACK_SCOPES
from handlers.commands import SLACK_USAGE
from sandbox.slack import BOT_SCOPES

ROOT = Path(__file__).resolve().parents[2]


def test_the_slack_manifest_declares_every_command_the_scopes_and_the_interactivity_url():
    manifest = yaml.safe_load((ROOT / "slack-app.yml").read_text())

    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    # Help is `/mainline help`: a bare /help would take a name every workspace uses.
    known = {f"/{name}" for name in SLACK_USAGE if name != "help"} | {"/mainline"}
    assert set(commands) == known, (f"slack-app.yml lacks {sorted(known - set(commands))} "
                                    f"and declares unknown {sorted(set(commands) - known)}")
    assert {c["url"] for c in commands.values()} == {"https://mainline.example.com/slack/commands"}
    assert manifest["settings"]["interactivity"] == {
        "is_enabled": True, "request_url": "https://mainline.example.com/slack/actions"}
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(SLACK_SCOPES) == sorted(BOT_SCOPES)
    assert "event_subscriptions" not in manifest["settings"]  # Mainline serves no Events API endpoint


def _runs(args: list[str]) -> None:
    """`mainline ARGS --help` parses: the command and its options exist."""
    from click.testing import CliRunner

    from bot.cli import main

    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, (args, result.output)


def test_compose_runs_web_worker_postgres_redis_and_a_tls_proxy_with_real_commands():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yml").read_text())
    services = compose["services"]

    assert {"web", "worker", "postgres", "redis", "proxy", "migrate"} <= set(services)
    for name in ("web", "worker", "migrate"):
        _runs(services[name]["command"])
        assert services[name]["environment"]["MAINLINE_MIGRATE_ON_START"] == "false"
    assert services["web"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "443:443" in services["proxy"]["ports"]
    assert "reverse_proxy web:8000" in (ROOT / "deploy" / "Caddyfile").read_text()


def test_the_systemd_units_run_real_commands():
    for unit in ("mainline-web.service", "mainline-worker.service"):
        lines = (ROOT / "deploy" / "systemd" / unit).read_text().splitlines()
        for key in ("ExecStart=", "ExecStartPre="):
            for line in (ln for ln in lines if ln.startswith(key)):
                binary, *args = line.removeprefix(key).split()
                assert binary == "/opt/mainline/bin/mainline"
                _runs(args)
