"""The `mainline` command."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path

import click

from bot.cli_audit import events, release_notes
from bot.cli_bisect import bisect
from bot.cli_canary import canary
from bot.cli_db import db
from bot.cli_deliveries import deliveries
from bot.cli_doctor import doctor
from bot.cli_setup import setup
from bot.cli_store import cli_errors, open_settings
from bot.cli_tokens import tokens
from bot.settings import Settings, SettingsError, load_settings


def _setup_logging(verbose: bool = False, log_format: str = "text") -> None:
    from bot.logs import setup_logging

    setup_logging(logging.DEBUG if verbose else logging.INFO, log_format)


def _settings() -> Settings:
    return open_settings()


def _pipeline():
    from bot.wiring import wire

    return wire(_settings(), role="cli").pipeline


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Mainline: a merge to master goes to production by itself; a bad release is rolled back
    and reverted, so master and production never disagree."""
    try:
        log_format = load_settings().log_format
    except SettingsError:
        log_format = "text"  # the command that needs the settings says what is wrong with them
    _setup_logging(verbose, log_format)


def _gunicorn_logs():
    from gunicorn.glogging import Logger

    class GunicornLogs(Logger):
        """gunicorn's lines go through the root handler, so they share its format and its secrets filter."""

        def setup(self, cfg) -> None:
            super().setup(cfg)
            for logger in (self.error_log, self.access_log):
                for handler in list(logger.handlers):
                    logger.removeHandler(handler)
                logger.propagate = True

    return GunicornLogs


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Serve webhooks, Slack, the dashboard, the API and metrics (gunicorn)."""
    settings = _settings()
    try:
        settings.require("github_webhook_secret")
    except SettingsError as exc:
        click.echo(str(exc.code), err=True)
        sys.exit(2)
    from gunicorn.app.base import BaseApplication

    from bot.app import create_app

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 8)
            self.cfg.set("accesslog", None)
            self.cfg.set("timeout", 60)
            # SIGTERM lets requests in hand finish, for this long at most; then workers are killed.
            self.cfg.set("graceful_timeout", 5)
            self.cfg.set("logger_class", _gunicorn_logs())
            # gunicorn's control socket sits at one path per user: two servers would share it.
            self.cfg.set("control_socket_disable", True)

        def load(self):
            # A webhook's request thread hands its write to the inbox's writer thread and waits:
            # a shorter GIL switch interval lets that writer run promptly among busy threads.
            sys.setswitchinterval(0.0005)
            return create_app(settings)

    Server().run()


@main.command()
def worker() -> None:
    """Run deploys: the queue consumer plus the periodic reconciler.

    SIGINT or SIGTERM stops it within seconds; the deploys it was moving hand their leases back
    and resume on the next worker."""
    from bot.shutdown import on_stop_signals, stop_worker
    from bot.wiring import poll_inbox, wire

    settings = _settings()
    wired = wire(settings, role="worker")
    stop = threading.Event()

    def reconcile_forever() -> None:
        log = logging.getLogger("mainline.reconciler")
        while not stop.wait(settings.reconcile_seconds):
            try:
                wired.pipeline.reconcile()
            except Exception:
                log.exception("reconcile pass failed; the next one will try again")

    helpers = [threading.Thread(target=reconcile_forever, daemon=True, name="reconciler"),
               threading.Thread(target=poll_inbox, args=(wired, stop), daemon=True, name="inbox")]
    consumer = wired.queue.consumer(settings.worker_threads)
    consumer.start()
    # After consumer.start(), which installs huey's handlers: ours stop the helpers too, and bound the wait.
    stopping = on_stop_signals()
    try:
        for thread in helpers:
            thread.start()
        wired.pipeline.reconcile()
        logging.getLogger("mainline.worker").info("worker started (%d queue threads, pid %d)",
                                                  settings.worker_threads, os.getpid())
        while not stopping.wait(10):
            consumer.check_worker_health()  # huey's own loop does this; we run the loop
    finally:
        stop.set()
        stop_worker(consumer, helpers, lambda: wired.store.release_leases_held_by(wired.pipeline.owner))


@main.command()
@click.argument("service")
@click.option("--ref", default=None, help="branch or sha (default: the production branch head)")
@click.option("--env", "environment", default="production", show_default=True)
@click.option("--by", default="cli", show_default=True, help="who asks (recorded)")
@click.option("--force", is_flag=True, help="deploy past a lock or window (needs --reason)")
@click.option("--reason", default=None)
@click.option("--dry-run", is_flag=True, help="print what it would ship and what would hold it; change nothing")
@click.option("--restart", is_flag=True, help="deploy the live sha again, reading env and secrets anew "
                                              "(a rotated secret)")
def deploy(service, ref, environment, by, force, reason, dry_run, restart) -> None:
    """Queue a deploy of SERVICE."""
    if restart and (ref or force or dry_run):
        raise click.UsageError("--restart deploys the live sha: it takes no --ref, --force or --dry-run")
    with cli_errors():
        if dry_run:
            from bot.preview import preview, render_preview_text

            click.echo(render_preview_text(preview(_pipeline(), service, environment, ref, manual=True,
                                                   force_reason=reason if force else None)))
            return
        view = _pipeline().request_deploy(service, environment, ref, by, force=force, reason=reason,
                                          restart=restart)
    click.echo(f"queued {view['service']} {view['sha'][:12]} for {view['environment']} (deploy {view['id']})")


@main.command()
@click.argument("service")
@click.option("--env", "environment", default="production", show_default=True)
@click.option("--to", "to", default=None, help="sha (prefix) of the release to restore")
@click.option("--by", default="cli", show_default=True)
def rollback(service, environment, to, by) -> None:
    """Roll SERVICE back to the last good release (or --to), then revert the branch."""
    with cli_errors():
        view = _pipeline().rollback(service, environment, by, to=to)
    click.echo(f"rolling back {service} in {environment}: {view['sha'][:12]} -> {view['previous_sha'][:12]}")


@main.command()
@click.argument("service", required=False)
@click.option("--json", "as_json", is_flag=True)
def status(service, as_json) -> None:
    """What is live, what is queued, and why it is not deploying."""
    with cli_errors():
        rows = _pipeline().status(service)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no services yet")
    for row in rows:
        live = row["live"]["sha"][:12] if row["live"] else "nothing"
        sync = "in sync" if row["in_sync"] else "NOT in sync"
        click.echo(f"{row['service']} {row['environment']}: live {live}, head {(row['head'] or '?')[:12]} ({sync})")
        if row.get("ahead_because"):
            click.echo(f"  {row['ahead_because']}")
        if row["locked"]:
            click.echo(f"  locked by {row['locked']['by']}: {row['locked']['reason']}")
        for item in row["queue"]:
            why = f" — waiting: {item['blocked_by']}" if item["blocked_by"] else ""
            click.echo(f"  {item['sha'][:12]} {item['state']}{why}")


@main.command()
@click.argument("service")
@click.option("--env", "environment", default="production", show_default=True)
@click.option("--reason", required=True)
@click.option("--by", default="cli", show_default=True)
def lock(service, environment, reason, by) -> None:
    """Hold automatic deploys of SERVICE."""
    with cli_errors():
        _pipeline().lock(service, environment, by, reason)
    click.echo(f"locked {service} in {environment}: {reason}")


@main.command()
@click.argument("service")
@click.option("--env", "environment", default="production", show_default=True)
@click.option("--by", default="cli", show_default=True)
def unlock(service, environment, by) -> None:
    """Let automatic deploys of SERVICE go again."""
    with cli_errors():
        _pipeline().unlock(service, environment, by)
    click.echo(f"unlocked {service} in {environment}")


@main.command()
@click.argument("deploy_id", type=int)
@click.option("--by", default="cli", show_default=True, help="who approves (recorded in the event log)")
@click.option("--reason", default="", help="why (recorded in the event log)")
def approve(deploy_id, by, reason) -> None:
    """Grant the approval DEPLOY_ID waits for (e.g. its contract migrations)."""
    _decide(deploy_id, by, True, reason)


@main.command()
@click.argument("deploy_id", type=int)
@click.option("--reason", required=True, help="why not (recorded, and shown on the deploy)")
@click.option("--by", default="cli", show_default=True)
def reject(deploy_id, reason, by) -> None:
    """Refuse the approval DEPLOY_ID waits for; the deploy fails with the reason."""
    _decide(deploy_id, by, False, reason)


def _decide(deploy_id: int, by: str, approved: bool, reason: str) -> None:
    with cli_errors():
        _pipeline().approve(deploy_id, by, approved, reason)
    click.echo(f"{'approved' if approved else 'rejected'} deploy {deploy_id}" + (f": {reason}" if reason else ""))


@main.command()
@click.option("--reason", required=True, help="why nothing may deploy (shown as what holds deploys back)")
@click.option("--by", default="cli", show_default=True)
def freeze(reason, by) -> None:
    """Hold automatic deploys of every service in every environment."""
    with cli_errors():
        _pipeline().freeze(by, reason)
    click.echo(f"froze all deploys: {reason}")


@main.command()
@click.option("--by", default="cli", show_default=True)
def unfreeze(by) -> None:
    """Lift a freeze; held deploys go again."""
    with cli_errors():
        _pipeline().unfreeze(by)
    click.echo("lifted the freeze")


@main.group()
def migrations() -> None:
    """Migration safety: which migrations expand the schema and which contract it."""


@migrations.command("check")
@click.option("--base", default=None,
              help="classify the migrations changed between BASE and HEAD (in the git work tree here)")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def migrations_check(base: str | None, paths: tuple[Path, ...]) -> None:
    """Print each migration with its class (expand or contract) and why; exit 1 when any is contract.

    With PATHs, classify those files; with --base, the migrations in the diff BASE..HEAD (PATHs then
    narrow the diff)."""
    from bot.migrations_cli import MigrationsCheckError, findings_in_diff, findings_in_files, render_findings

    try:
        findings = findings_in_diff(Path.cwd(), base, paths) if base else findings_in_files(paths)
    except MigrationsCheckError as exc:
        click.echo(f"mainline: {exc}", err=True)
        sys.exit(2)
    if not findings:
        click.echo("no migrations" + (f" between {base} and HEAD" if base else ""))
        return
    for line in render_findings(findings):
        click.echo(line)
    contract = [f for f in findings if f.contract]
    warning = ": old code may break against this schema; deploys carrying it wait for a person" if contract else ""
    click.echo(f"{len(findings)} migration(s), {len(contract)} contract{warning}")
    sys.exit(1 if contract else 0)


@main.group()
def config() -> None:
    """The repository config (.github/deploy.yml)."""


@config.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def config_validate(path: Path) -> None:
    """Check PATH against the schema; print each error with its line."""
    from bot.config import ConfigError, load_config

    try:
        cfg = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            where = f"line {problem.line}" if problem.line else "top"
            click.echo(f"{path}:{problem.line or 1}: {problem.path or '(root)'}: {problem.message} ({where})")
        sys.exit(1)
    click.echo(f"{path}: ok (service {cfg.service}, environments: {', '.join(cfg.environments)})")


@config.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of .github/deploy.yml."""
    from bot.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


# The demo's stories (sandbox/demo_stories.py plays them); listed here so that --help needs no sandbox.
DEMO_STORIES = ("default", "canary", "batch", "ecs")


@main.command()
@click.option("--once", is_flag=True, help="play the story once and exit non-zero if a step did not hold")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--story", type=click.Choice(DEMO_STORIES), default="default", show_default=True,
              help="default: merge → live → bad release → rollback → revert; canary: progressive delivery "
                   "judged by Prometheus; batch: three PRs coalesce, the bad one is found by bisection and reverted "
                   "alone; ecs: the same on ECS (moto and an ECS stand-in), with an alarm, an image ECS cannot "
                   "pull, and a retry")
def demo(once: bool, port: int, story: str) -> None:
    """Start everything on this machine and play merge → live → bad release → rollback → revert."""
    # The stand-ins are not part of the bot: the `sandbox` package, installed with the `demo` extra.
    try:
        from sandbox.demo_stories import run_story
    except ModuleNotFoundError as exc:
        install = "pip install 'mainline[demo]'"
        raise click.ClickException(f"`mainline demo` needs the demo extra: {install} ({exc})") from exc

    sys.exit(run_story(story, once=once, bot_port=port))


main.add_command(tokens)
main.add_command(canary)
main.add_command(deliveries)
main.add_command(bisect)  # mainline bisect SERVICE: find which commit of a reverted release broke it
main.add_command(events)
main.add_command(release_notes)
main.add_command(db)
main.add_command(doctor)
main.add_command(setup)

if __name__ == "__main__":
    main()
