"""The audit log: every command and refusal, with who and why, through GET /api/events and
`mainline events`; `mainline release-notes` for one release."""

from __future__ import annotations

from bot.app import create_app
from bot.settings import load_settings
from tests.conftest import authed


def _service(wired, name="web"):
    wired.store.upsert_service(name, f"acme/{name}", f"file:///nowhere/{name}", "master")


def test_locks_and_freezes_are_in_the_audit_log_for_the_api_and_the_cli(wired, client, mainline):
    _service(wired)
    _service(wired, "shop")
    wired.pipeline.lock("web", "production", "slack:U1", "incident 7")
    wired.pipeline.unlock("web", "production", "cli:ops")
    wired.pipeline.lock("shop", "production", "slack:U2", "load test")

    log = authed(client, wired).get("/api/events").get_json()
    assert [(e["service"], e["kind"], e["by"]) for e in log] == [
        ("web", "locked", "slack:U1"), ("web", "unlocked", "cli:ops"), ("shop", "locked", "slack:U2")]
    assert log[0]["message"] == "slack:U1 locked web: incident 7"

    # One service, and paging on from the last id seen.
    only_web = client.get("/api/events?service=web").get_json()
    assert [e["kind"] for e in only_web] == ["locked", "unlocked"]
    assert [e["service"] for e in client.get(f"/api/events?after={log[1]['id']}").get_json()] == ["shop"]
    assert client.get("/api/events?after=x").status_code == 400

    out = mainline("events", "--service", "web").output.splitlines()
    assert len(out) == 2 and out[0].endswith("web/production locked by slack:U1: slack:U1 locked web: incident 7")
    assert mainline("events", "--after", str(log[-1]["id"])).output == "no events\n"


def test_the_audit_log_is_never_public(settings, wired):
    public = load_settings(database_url=settings.database_url, queue_url=settings.queue_url,
                           state_dir=settings.state_dir, github_webhook_secret="s", public_read=True)
    _service(wired)
    wired.pipeline.lock("web", "production", "slack:U1", "incident 7")
    client = create_app(public, wired).test_client()
    assert client.get("/api/services").status_code == 200  # what PUBLIC_READ opens
    assert client.get("/api/events").status_code == 401  # who did what stays behind sign-in


def test_release_notes_of_an_unknown_service_is_a_clear_error(mainline):
    result = mainline("release-notes", "nosuch", "abc123")
    assert result.exit_code == 1 and "nosuch" in result.output
