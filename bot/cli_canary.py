"""`mainline canary promote|pause|abort SERVICE [--env ENV]`: step into a running canary."""

from __future__ import annotations

import click

from bot.cli_store import cli_errors, open_settings

VERBS = {"promote": "goes on to its next step", "pause": "holds its weight until promoted or aborted",
         "abort": "goes to weight 0 and is removed; the release is rolled back and reverted"}


def _act(action: str, service: str, environment: str, by: str) -> None:
    from bot.wiring import wire

    with cli_errors():
        done = wire(open_settings(), role="cli").pipeline.canary(service, environment, action, by)
    click.echo(f"the canary of {service} {done['sha'][:12]} in {environment} {VERBS[action]} (deploy {done['id']})")


@click.group()
def canary() -> None:
    """Step into a running canary (strategy: canary): promote, pause or abort it."""


def _command(action: str) -> click.Command:
    @click.argument("service")
    @click.option("--env", "environment", default="production", show_default=True)
    @click.option("--by", default="cli", show_default=True)
    def run(service: str, environment: str, by: str) -> None:
        _act(action, service, environment, by)

    run.__doc__ = f"The running canary of SERVICE {VERBS[action]}."
    return click.command(action)(run)


for _action in VERBS:
    canary.add_command(_command(_action))
