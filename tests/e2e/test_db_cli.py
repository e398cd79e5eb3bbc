"""Mainline's own database through `mainline db`: the schema revision, upgrading it, a process
that is told not to migrate refusing a stale schema, and a backup restored after a later release
went live: the worker carries on and brings production and its record back in sync."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.infra.db.maintenance import head_revision
from bot.settings import SettingsError, load_settings


def run(monkeypatch, settings, *args: str):
    monkeypatch.setenv("MAINLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MAINLINE_QUEUE_URL", settings.queue_url)
    monkeypatch.setenv("MAINLINE_STATE_DIR", str(settings.state_dir))
    for name in ("GITHUB_TOKEN", "GITHUB_APP_ID", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_db_current_and_upgrade_and_a_process_that_must_not_migrate(tmp_path, monkeypatch):
    from bot.wiring import wire

    settings = load_settings(database_url=f"sqlite:///{tmp_path}/m.db", queue_url=f"sqlite:///{tmp_path}/q.db",
                             state_dir=tmp_path / "state", migrate_on_start=False)

    before = run(monkeypatch, settings, "db", "current")
    assert before.exit_code == 1 and "no schema yet" in before.output and "mainline db upgrade" in before.output
    with pytest.raises(SettingsError, match="MAINLINE_MIGRATE_ON_START=false"):
        wire(settings)  # the worker and web refuse to start on a schema they would misread

    upgraded = run(monkeypatch, settings, "db", "upgrade")
    assert upgraded.exit_code == 0 and f"-> {head_revision()} (head)" in upgraded.output
    assert run(monkeypatch, settings, "db", "upgrade").output.startswith("already at")
    current = run(monkeypatch, settings, "db", "current")
    assert (current.exit_code, current.output.strip()) == (0, f"{head_revision()} (head)")
    assert wire(settings).store.services() == []


@pytest.mark.docker
def test_a_restored_backup_lets_the_worker_carry_on_to_what_master_says(world, monkeypatch, tmp_path):
    from bot.wiring import wire

    v1 = world.first_release()
    backup = tmp_path / "mainline-backup.db"
    saved = run(monkeypatch, world.settings, "db", "backup", str(backup))
    assert saved.exit_code == 0 and "SQLite backup API" in saved.output
    _, v2 = world.merge_pr("octocat/v2", world.app_files("v2"), "Add the v2 page")
    world.relay()
    world.work()
    assert world.serves() == f"{world.service} v2"

    # The database is lost; the worker stops; the operator restores last night's backup.
    world.wired.store.engine.dispose()
    restored = run(monkeypatch, world.settings, "db", "restore", "--yes", str(backup))
    assert restored.exit_code == 0 and "(head)" in restored.output
    world.wired = wire(world.settings)
    assert world.status()["live"]["sha"] == v1  # the backup's world: v2 never happened

    world.wired.pipeline.reconcile()  # the worker's first pass on start
    world.work()

    status = world.status()
    assert status["live"]["sha"] == v2 == world.head() and status["in_sync"] is True
    assert world.serves() == f"{world.service} v2"
