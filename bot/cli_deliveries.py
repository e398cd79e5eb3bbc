"""`mainline deliveries [--failed]` and `mainline deliveries retry ID`: the webhook inbox, its
failing deliveries and dead letters, and replaying one."""

from __future__ import annotations

import json

import click

from bot.cli_store import cli_errors, open_store


def _store():
    return open_store()


@click.group(invoke_without_command=True)
@click.option("--failed", is_flag=True, help="only dead letters and deliveries still failing")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="one JSON list, as GET /api/deliveries gives it")
@click.pass_context
def deliveries(ctx: click.Context, failed: bool, limit: int, as_json: bool) -> None:
    """GitHub webhook deliveries, newest first: what came, what became of it, and, for one that
    failed, its attempts and last error. A delivery that keeps failing is retried with backoff,
    then dead-lettered; `mainline deliveries retry ID` replays it."""
    if ctx.invoked_subcommand is not None:
        return
    rows = _store().deliveries(failed=failed, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no failed deliveries" if failed else "no deliveries")
        return
    for row in rows:
        click.echo(_line(row))


@deliveries.command("retry")
@click.argument("delivery_id")
def deliveries_retry(delivery_id: str) -> None:
    """Replay delivery DELIVERY_ID: the worker takes it again from a first attempt, dead-lettered
    or not. Replaying dead letters is for admins (MAINLINE_ADMINS); on the CLI, being able to run
    `mainline` on the bot's host, with its database, is that authority."""
    with cli_errors():
        _store().retry_delivery(delivery_id)
    click.echo(f"delivery {delivery_id} queued again: the worker takes it on its next pass")


def _line(row: dict) -> str:
    event = row["event"] + (f".{row['action']}" if row["action"] else "")
    if row["dead"]:
        state = f"DEAD after {row['attempts']} attempt(s): {row['last_error']}"
    elif row["processed_at"]:
        state = f"done: {row['outcome']}"
    elif row["last_error"]:
        state = f"failing ({row['attempts']} attempt(s), next at {row['next_attempt_at']}): {row['last_error']}"
    else:
        state = "waiting for the worker"
    return f"{row['delivery_id']}  {event}  received {row['received_at']}  {state}"
