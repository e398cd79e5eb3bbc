"""`mainline doctor`: check every connection and permission, one line each with its fix."""

from __future__ import annotations

import click

from bot.cli_store import open_settings


@click.command()
@click.option("--repo", "repos", multiple=True, metavar="OWNER/NAME",
              help="a repository to check (default: every repository Mainline already knows)")
@click.option("--aws/--no-aws", default=None, help="check AWS (default: when AWS credentials are configured)")
@click.option("--docker-host", "docker_hosts", multiple=True, metavar="URL",
              help="another Docker engine to check (unix://, ssh://user@host, tcp://host:2376); DOCKER_HOST always is")
def doctor(repos: tuple[str, ...], aws: bool | None, docker_hosts: tuple[str, ...]) -> None:
    """Check GitHub, Slack, the registry, Docker, HAProxy and AWS as Mainline uses them; exit 1
    when any check fails."""
    from bot.doctor.run import run_doctor

    settings = open_settings()
    known = list(repos) or _known_repos(settings)
    findings = run_doctor(settings, known, aws=aws, docker_hosts=list(docker_hosts))
    for finding in findings:
        click.echo(finding.line())
    failed = [f for f in findings if f.status == "fail"]
    click.echo(f"{len(findings) - len(failed)} ok or skipped, {len(failed)} failing")
    raise SystemExit(1 if failed else 0)


def _known_repos(settings) -> list[str]:
    from bot.infra.db.maintenance import DatabaseError, schema_state
    from bot.infra.db.store import Store

    try:
        if not schema_state(settings.database_url).at_head:
            return []
    except DatabaseError:
        return []
    store = Store(settings.database_url)
    try:
        return sorted({service.repo for service in store.services()})
    finally:
        store.engine.dispose()
