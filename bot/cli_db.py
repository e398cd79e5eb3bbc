"""`mainline db upgrade | current | backup FILE | restore FILE`: Mainline's own database."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli_store import cli_errors, open_settings


@click.group()
def db() -> None:
    """Mainline's own database (MAINLINE_DATABASE_URL): schema and backups."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the schema to the newest revision (safe to run again; web and worker may run)."""
    from bot.infra.db.maintenance import schema_state
    from bot.infra.db.store import Store

    url = open_settings().database_url
    with cli_errors():
        before = schema_state(url)
        store = Store(url)
        try:
            store.migrate()
        finally:
            store.engine.dispose()
        after = schema_state(url)
    if before.current == after.current:
        click.echo(f"already at {after.describe()}")
    else:
        click.echo(f"upgraded {before.current or 'an empty database'} -> {after.describe()}")


@db.command("current")
def db_current() -> None:
    """Print the schema revision; exit 1 when it is behind (a deploy of Mainline forgot `db upgrade`)."""
    from bot.infra.db.maintenance import schema_state

    with cli_errors():
        state = schema_state(open_settings().database_url)
    click.echo(state.describe())
    raise SystemExit(0 if state.at_head else 1)


@db.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(target: Path) -> None:
    """Write a consistent copy of the database to TARGET while the bot runs (SQLite's backup API,
    or pg_dump's custom format)."""
    from bot.infra.db.maintenance import backup

    with cli_errors():
        click.echo(backup(open_settings().database_url, target))


@db.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="replace the database's content without asking")
def db_restore(source: Path, yes: bool) -> None:
    """Replace the database's content with the backup SOURCE. Stop web and worker first; the
    worker's reconciler catches up with GitHub and the targets when it starts again."""
    from bot.infra.db.maintenance import restore

    url = open_settings().database_url
    if not yes:
        click.confirm(f"replace everything in {url.split('@')[-1]} with {source}?", abort=True)
    with cli_errors():
        click.echo(restore(url, source))
