"""`mainline bisect SERVICE [--env ENV] [--good SHA --bad SHA]`: find which commit of a release
that was reverted in full broke it. The worker runs the search (as for an automatic one); this
command asks for it, then follows its rounds until it ends. On a culprit, the other commits are
put back on the branch and ship through the normal path."""

from __future__ import annotations

import time

import click

from bot.cli_store import cli_errors, open_settings
from bot.domain import DeployState
from bot.wiring import wire


@click.command()
@click.argument("service")
@click.option("--env", "environment", default="production", show_default=True)
@click.option("--good", default=None, help="the last good commit (default: the release before the bad one)")
@click.option("--bad", default=None, help="the reverted release to search (default: the newest)")
@click.option("--by", default="cli", show_default=True)
@click.option("--wait/--no-wait", default=True, show_default=True, help="follow the search until it ends")
@click.option("--timeout", default=3600, show_default=True, type=click.IntRange(1, 4 * 3600),
              help="seconds to follow it")
def bisect(service: str, environment: str, good: str | None, bad: str | None, by: str, wait: bool,
           timeout: int) -> None:
    """Find which commit of a release reverted in full broke it; put the others back."""
    with cli_errors():
        pipeline = wire(open_settings(), role="cli").pipeline
        view = pipeline.bisect(service, environment, by, good=good, bad=bad)
        click.echo(f"bisecting the {view['commits']} commits of {service} {view['good'][:12]}..{view['bad'][:12]} "
                   f"in {environment} (deploy {view['id']}); the worker runs the search")
        if wait:
            _follow(pipeline.ctx.store, view["id"], timeout)


def _follow(store, deploy_id: int, timeout: int) -> None:
    """Print each round as the worker records it, then how the search ended."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    start = len(store.events(deploy_id))
    while time.monotonic() < deadline:
        done = DeployState(store.deploy(deploy_id).state) is not DeployState.BISECTING
        for i, event in enumerate(list(store.events(deploy_id))[start:]):
            if i not in seen and event.kind in ("bisect", "culprit"):
                seen.add(i)
                click.echo(f"  {event.message}")
                if event.kind == "culprit" and done:
                    return
        time.sleep(1)
    raise click.ClickException(f"the search is still running after {timeout}s; follow it with "
                               f"`mainline events` or on the deploy's page")
