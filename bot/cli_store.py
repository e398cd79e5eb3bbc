"""The store for operator commands run on the host (`mainline tokens`, `mainline deliveries`)."""

from __future__ import annotations

import sys

import click


def open_store():
    """The configured store, migrated (a fresh install may run these before the bot ever did);
    a bad setting stops with its name, as every command does."""
    from bot.infra.db.store import Store
    from bot.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo(str(exc.code), err=True)
        sys.exit(2)
    store = Store(settings.database_url)
    store.migrate()
    return store
