"""`mainline tokens create NAME --scope read|deploy` and `mainline tokens revoke NAME`."""

from __future__ import annotations

import click

from bot.cli_store import cli_errors, open_store


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
    with cli_errors():
        token = _tokens().create(name, scope)
    click.echo(token)
    click.echo(f"token {name!r} ({scope}) created; it is shown only now: store it somewhere safe", err=True)


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Refuse the token named NAME from now on."""
    with cli_errors():
        _tokens().revoke(name)
    click.echo(f"token {name!r} revoked")
