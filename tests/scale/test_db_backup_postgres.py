"""`mainline db backup` and `restore` on PostgreSQL (pg_dump's custom format, pg_restore --clean):
what the backup held comes back, what came after it goes, and the schema is at head."""

from __future__ import annotations

from click.testing import CliRunner

from bot.cli import main


def test_a_postgres_backup_restores_the_services_it_held(database_url, open_store, tmp_path, monkeypatch):
    monkeypatch.setenv("MAINLINE_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    open_store(database_url).upsert_service("web", "acme/web", "https://github.com/acme/web.git", "master")
    dump = tmp_path / "mainline.dump"

    saved = runner.invoke(main, ["db", "backup", str(dump)], catch_exceptions=False)
    assert saved.exit_code == 0 and "pg_dump custom format" in saved.output, saved.output
    open_store(database_url).upsert_service("api", "acme/api", "https://github.com/acme/api.git", "master")
    restored = runner.invoke(main, ["db", "restore", "--yes", str(dump)], catch_exceptions=False)

    assert restored.exit_code == 0 and "(head)" in restored.output, restored.output
    assert [s.name for s in open_store(database_url).services()] == ["web"]
