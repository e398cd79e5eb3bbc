"""Settings and the store for operator commands run on the host (`mainline tokens`,
`mainline deliveries`, `mainline events`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from bot.errors import MainlineError
from bot.infra.db.store import Store
from bot.logs import redact_also, settings_secrets
from bot.settings import Settings, SettingsError, load_settings


def open_settings() -> Settings:
    """The settings; a bad one stops the command with its name (exit 2)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo(str(exc.code), err=True)
        sys.exit(2)
    # Secrets read from MAINLINE_SECRETS_DIR are not in the environment the log filter started with.
    redact_also(settings_secrets(settings))
    return settings


def open_store() -> Store:
    """The configured store, migrated (a fresh install may run these before the bot ever did)."""
    store = Store(open_settings().database_url)
    store.migrate()
    return store


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Our own errors end the command with their message on stderr and exit 1 (no traceback)."""
    try:
        yield
    except MainlineError as exc:
        click.echo(f"mainline: {exc}", err=True)
        sys.exit(1)
