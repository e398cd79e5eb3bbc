"""`mainline doctor`: check every connection and permission, one line each with its fix."""

from __future__ import annotations

import logging

import click

from bot.cli_store import open_settings

AREAS = ("database", "github", "slack", "registry", "docker", "docker-hosts", "haproxy", "aws")


@click.command()
@click.option("--repo", "repos", multiple=True, metavar="OWNER/NAME",
              help="a repository to check (default: every repository Mainline already knows)")
@click.option("--aws/--no-aws", default=None, help="check AWS (default: when AWS credentials are configured)")
@click.option("--docker-host", "docker_hosts", multiple=True, metavar="URL",
              help="another Docker engine to check (unix://, ssh://user@host, tcp://host:2376); DOCKER_HOST always is")
@click.option("--docker-tls", "docker_tls", multiple=True, metavar="tcp://HOST:PORT=DIR",
              help="the tls: directory (under MAINLINE_SECRETS_DIR) of a tcp:// host of MAINLINE_DOCKER_HOSTS "
                   "(default: what the deploy.yml files Mainline knows name)")
@click.option("--only", multiple=True, type=click.Choice(AREAS),
              help="check only this part (repeatable; default: all); docker-hosts: MAINLINE_DOCKER_HOSTS alone")
def doctor(repos: tuple[str, ...], aws: bool | None, docker_hosts: tuple[str, ...], docker_tls: tuple[str, ...],
           only: tuple[str, ...]) -> None:
    """Check GitHub, Slack, the registry, Docker (and every host of MAINLINE_DOCKER_HOSTS), HAProxy
    and AWS as Mainline uses them; exit 1 when any check fails."""
    from bot.doctor.hosts import stored_tls_dirs
    from bot.doctor.run import run_doctor

    logging.getLogger("paramiko").setLevel(logging.WARNING)  # not a line per SSH connection amid the report
    settings = open_settings()
    known = list(repos) or _known_repos(settings)
    tls_dirs = stored_tls_dirs(settings.database_url) if not only or {"docker", "docker-hosts"} & set(only) else {}
    for pair in docker_tls:
        url, sep, folder = pair.partition("=")
        if not sep or not url.startswith("tcp://") or not folder:
            raise click.BadParameter(f"expected tcp://HOST:PORT=DIR, got {pair!r}", param_hint="--docker-tls")
        tls_dirs[url] = [folder]
    findings = run_doctor(settings, known, aws=aws, docker_hosts=list(docker_hosts), tls_dirs=tls_dirs,
                          only=only)
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
