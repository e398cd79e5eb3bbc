"""`mainline events`: the audit log (who did what, what was refused, and why), and
`mainline release-notes SERVICE SHA`: the pull requests a release shipped."""

from __future__ import annotations

import json

import click

from bot.cli_store import cli_errors, open_settings, open_store
from bot.notify.release_reporter import notes_for
from bot.usecases.queries import event_view
from bot.wiring import wire


@click.command()
@click.option("--service", default=None, help="only this service's events")
@click.option("--after", default=0, show_default=True, type=click.IntRange(0), help="events after this id")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="one JSON list, as GET /api/events gives it")
def events(service: str | None, after: int, limit: int, as_json: bool) -> None:
    """The audit log, oldest first: every deploy step, command and refusal, with who and why.
    Page on with --after (the last id shown)."""
    rows = [event_view(r) for r in open_store().events_since(after, limit, service)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no events")
    for row in rows:
        by = f" by {row['by']}" if row["by"] else ""
        deploy = f" deploy #{row['deploy_id']}" if row["deploy_id"] else ""
        click.echo(f"{row['id']} {row['at']} {row['service']}/{row['environment']}{deploy} "
                   f"{row['kind']}{by}: {row['message']}")


@click.command("release-notes")
@click.argument("service")
@click.argument("sha")
@click.option("--env", "environment", default="production", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def release_notes(service: str, sha: str, environment: str, as_json: bool) -> None:
    """The pull requests the release of SHA shipped, since the release live before it."""
    with cli_errors():
        notes = notes_for(wire(open_settings(), role="cli").pipeline, service, environment, sha)
    click.echo(json.dumps(notes.as_json(), indent=2) if as_json else notes.text.rstrip())
