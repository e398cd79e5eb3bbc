"""`mainline tokens create NAME --scope read|deploy` and `mainline tokens revoke NAME`."""

from __future__ import annotations

import sys

import click

from bot.cli_store import open_store
from bot.errors import MainlineError


def _tokens():
    from bot.auth import ApiTokens

    return ApiTokens(open_store())


@click.group()
def tokens() -> None:
    """API tokens for scripts: `Authorization: Bearer <token>` on the API and dashboard."""


@tokens.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "deploy"]), required=True,
              help="read: the dashboard and GET /api/*; deploy: also actions")
def tokens_create(name: str, scope: str) -> None:
    """Make a token named NAME and print it once; only its SHA-256 is kept."""
    try:
        token = _tokens().create(name, scope)
    except MainlineError as exc:
        click.echo(f"mainline: {exc}", err=True)
        sys.exit(1)
    click.echo(token)
    click.echo(f"token {name!r} ({scope}) created; it is shown only now: store it somewhere safe", err=True)


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Refuse the token named NAME from now on."""
    try:
        _tokens().revoke(name)
    except MainlineError as exc:
        click.echo(f"mainline: {exc}", err=True)
        sys.exit(1)
    click.echo(f"token {name!r} revoked")
