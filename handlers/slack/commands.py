"""POST /slack/commands: slash commands, acknowledged at once, answered through response_url."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from bot.config import DeployConfig
from bot.escape import slack_text
from bot.preview import preview, render_preview_text
from handlers.commands import (
    SLACK_COMMANDS,
    SLACK_USAGE,
    UsageError,
    default_environment,
    environment_problem,
    lock_words,
)
from handlers.slack.common import Actor, SlackDeps, deployer_refusal, ephemeral, in_channel, refuse, reply, run_job
from handlers.slack.intake import Rejected, Signed, endpoint, form

SERVICE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
HISTORY_LIMIT = 10


@dataclass(frozen=True)
class Command:
    name: str
    service: str | None = None
    environment: str | None = None
    ref: str | None = None
    release: str | None = None
    reason: str | None = None
    dry_run: bool = False  # /deploy … --dry-run: say what it would ship, change nothing


# -- parsing (pure) ----------------------------------------------------------------------------


def _service(name: str, word: str) -> str:
    if not SERVICE.match(word):
        raise SLACK_COMMANDS.misuse(name, f"`{word}` is not a service name.")
    return word


def _split_to(name: str, words: list[str]) -> tuple[list[str], str | None]:
    """Split `a b to c` into ([a, b], c)."""
    if "to" not in words:
        return words, None
    at = words.index("to")
    if at != len(words) - 2:
        raise SLACK_COMMANDS.misuse(name)
    return words[:at], words[at + 1]


def parse_command(command: str, text: str) -> Command:
    """Read a slash command (`/deploy web`, or `/mainline deploy web`) into a Command."""
    name = command.strip().lstrip("/").lower()
    words = text.split()
    if name == "mainline":
        if not words:
            return Command("help")
        name, words = words[0].lower(), words[1:]
    if name not in SLACK_USAGE:
        raise SLACK_COMMANDS.misuse(name, f"Unknown command `{name}`.")
    rest = " ".join(words)
    if name == "help":
        return Command("help")
    if name == "unfreeze":
        if words:
            raise SLACK_COMMANDS.misuse(name)
        return Command(name)
    if name == "freeze":
        if not words:
            raise SLACK_COMMANDS.misuse(name, "Give a reason.")
        return Command(name, reason=rest)
    if name == "status":
        if len(words) > 1:
            raise SLACK_COMMANDS.misuse(name)
        return Command(name, service=_service(name, words[0]) if words else None)
    if not words:
        raise SLACK_COMMANDS.misuse(name)
    service = _service(name, words[0])
    args = words[1:]
    if name == "history":
        if args:
            raise SLACK_COMMANDS.misuse(name)
        return Command(name, service=service)
    if name == "deploy":
        dry_run = "--dry-run" in args
        before, env = _split_to(name, [a for a in args if a != "--dry-run"])
        if len(before) > 1:
            raise SLACK_COMMANDS.misuse(name)
        return Command(name, service=service, ref=before[0] if before else None, environment=env, dry_run=dry_run)
    if name == "rollback":
        before, release = _split_to(name, args)
        if len(before) > 1:
            raise SLACK_COMMANDS.misuse(name)
        return Command(name, service=service, environment=before[0] if before else None, release=release)
    if name in ("unlock", "bisect", "promote", "abort"):
        if len(args) > 1:
            raise SLACK_COMMANDS.misuse(name)
        return Command(name, service=service, environment=args[0] if args else None)
    # lock: whether the first word after the service is an environment depends on the service's
    # config, so `resolve` decides; here the whole rest is the reason.
    if not args:
        raise SLACK_COMMANDS.misuse(name, "Give a reason.")
    return Command(name, service=service, reason=" ".join(args))


def resolve(command: Command, config: DeployConfig) -> Command:
    """Fill in the default environment, and split `/lock web staging why` by the known environments."""
    if command.name == "lock" and command.reason and command.environment is None:
        environment, reason = lock_words(command.reason.split(), config, SLACK_COMMANDS)
        command = replace(command, environment=environment, reason=reason)
    if command.environment is None:
        command = replace(command, environment=default_environment(config))
    return command


# -- answers (pure) ----------------------------------------------------------------------------


def _short(sha: str | None) -> str:
    return f"`{sha[:7]}`" if sha else "nothing"


def status_text(services: list[dict]) -> str:
    if not services:
        return "No services yet."
    lines = []
    for s in services:
        live = s.get("live") or {}
        line = f"*{s['service']}* in {s['environment']}: live {_short(live.get('sha'))}"
        line += " · in sync" if s.get("in_sync") else f" · head {_short(s.get('head'))} not live yet"
        if s.get("locked"):
            locked = s["locked"]
            line += f" · :lock: locked by {slack_text(locked.get('by'), 100)}: {slack_text(locked.get('reason'), 500)}"
        for item in s.get("queue") or []:
            blocked = f" (blocked: {slack_text(item['blocked_by'], 500)})" if item.get("blocked_by") else ""
            line += f"\n    {_short(item.get('sha'))} {item.get('state')}{blocked}"
        lines.append(line)
    return "\n".join(lines)


def history_text(service: str, deploys: list[dict]) -> str:
    if not deploys:
        return f"No deploys of {service} yet."
    lines = [f"Last deploys of *{service}*:"]
    for d in deploys:
        env = f" {d['environment']}" if d.get("environment") else ""
        finished = f" → {d['finished_at']}" if d.get("finished_at") else ""
        started = d.get("started_at") or "not started"
        lines.append(f"• #{d['id']}{env} {_short(d.get('sha'))} {d.get('state')} ({started}{finished})")
    return "\n".join(lines)


def _deploy_text(actor: Actor, verb: str, deploy: dict) -> str:
    return (f"<@{actor.user_id}> {verb} {deploy.get('service')} {_short(deploy.get('sha'))} "
            f"in {deploy.get('environment')}: deploy #{deploy.get('id')} is {deploy.get('state')}.")


# -- running a command (after the ack) ---------------------------------------------------------


def _run_service_command(deps: SlackDeps, actor: Actor, command: Command, service: str) -> None:
    config = deps.pipeline.service_config(service)
    command = resolve(command, config)
    env = command.environment or default_environment(config)  # resolve has named one
    problem = environment_problem(config, env)
    if problem:
        reply(deps, actor, ephemeral(problem))
        return
    if command.name == "history":
        reply(deps, actor, ephemeral(history_text(service, deps.pipeline.deploys(service, HISTORY_LIMIT))))
        return
    refusal = deployer_refusal(config, env, actor)
    if refusal:
        refuse(deps, actor, service, env, refusal)
        return
    _change_service(deps, actor, command, service, env)


def _change_service(deps: SlackDeps, actor: Actor, command: Command, service: str, env: str) -> None:
    """A deployer's command on one environment of a service: deploy, roll back, lock, unlock."""
    pipeline, who = deps.pipeline, f"<@{actor.user_id}>"
    if command.name == "deploy" and command.dry_run:
        text = render_preview_text(preview(pipeline, service, env, command.ref, manual=True))
        reply(deps, actor, ephemeral(f"```{slack_text(text, 3800)}```"))
    elif command.name == "deploy":
        deploy = pipeline.request_deploy(service, env, command.ref, actor.by)
        reply(deps, actor, in_channel(_deploy_text(actor, "asked to deploy", deploy)))
    elif command.name == "rollback":
        deploy = pipeline.rollback(service, env, actor.by, to=command.release)
        reply(deps, actor, in_channel(_deploy_text(actor, "is rolling back", deploy)))
    elif command.name == "lock":
        reason = command.reason or ""  # parse_command refuses a lock without one
        pipeline.lock(service, env, actor.by, reason)
        reply(deps, actor, in_channel(f":lock: {who} locked {service} in {env}: {reason}"))
    elif command.name == "unlock":
        pipeline.unlock(service, env, actor.by)
        reply(deps, actor, in_channel(f":unlock: {who} unlocked {service} in {env}."))
    elif command.name in ("promote", "abort"):
        done = pipeline.canary(service, env, command.name, actor.by)
        verb = "promoted" if command.name == "promote" else "aborted"
        reply(deps, actor, in_channel(f":bird: {who} {verb} the canary of {service} {_short(done['sha'])} in {env}."))
    elif command.name == "bisect":
        asked = pipeline.bisect(service, env, actor.by)
        reply(deps, actor, in_channel(f":mag_right: {who} asked which of the {asked['commits']} commits of {service} "
                                      f"{_short(asked['bad'])} broke {env}; the deploy card follows the search."))


def admin_refusal(deps: SlackDeps, actor: Actor, verb: str) -> str | None:
    """Only MAINLINE_ADMINS may freeze or unfreeze. Read from the bot's own settings, never from a
    service's config: a freeze stops every service, and one broken config must not stop a freeze."""
    if actor.by in deps.admins:
        return None
    return f"Only a Mainline admin may {verb}; MAINLINE_ADMINS lists who is (ask one of them)."


def _run_global_command(deps: SlackDeps, actor: Actor, command: Command) -> None:
    if command.name == "status":
        reply(deps, actor, ephemeral(status_text(deps.pipeline.status(command.service))))
        return
    refusal = admin_refusal(deps, actor, command.name)
    if refusal:
        refuse(deps, actor, "*", "*", refusal)
        return
    if command.name == "freeze":
        reason = command.reason or ""  # parse_command refuses a freeze without one
        deps.pipeline.freeze(actor.by, reason)
        reply(deps, actor, in_channel(f":snowflake: <@{actor.user_id}> froze deploys: {reason}"))
    else:
        deps.pipeline.unfreeze(actor.by)
        reply(deps, actor, in_channel(f":sunny: <@{actor.user_id}> lifted the deploy freeze."))


def on_command(deps: SlackDeps, actor: Actor, command: Command) -> None:
    if command.service is not None and command.name != "status":
        _run_service_command(deps, actor, command, command.service)
    else:
        _run_global_command(deps, actor, command)


# -- the endpoint ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slash:
    """A slash command as Slack posts it: `/deploy` and the text after it."""

    command: str
    text: str

    @property
    def said(self) -> str:
        return f"{self.command} {self.text}".strip()


def read_slash(body: bytes) -> Signed[Slash]:
    fields = form(body)
    if fields is None or not fields.get("command") or not fields.get("user_id") or not fields.get("channel_id"):
        raise Rejected(400, "expected a Slack slash-command form with command, user_id and channel_id")
    actor = Actor(fields["user_id"], fields["channel_id"], fields.get("response_url", ""))
    return Signed(actor, Slash(fields["command"], fields.get("text", "")))


def refused(actor: Actor, refusal: str) -> ResponseReturnValue:
    return jsonify(ephemeral(refusal))


def blueprint(deps: SlackDeps) -> Blueprint:
    def act(actor: Actor, slash: Slash) -> ResponseReturnValue:
        try:
            command = parse_command(slash.command, slash.text)
        except UsageError as exc:
            return jsonify(ephemeral(str(exc)))
        if command.name == "help":
            return jsonify(ephemeral(SLACK_COMMANDS.help_text()))
        run_job(deps, actor, lambda: on_command(deps, actor, command))
        return jsonify(ephemeral(f":hourglass_flowing_sand: On it: {slash.said}"))

    return endpoint("slack_commands", "/slack/commands", "on_slack_command", deps, read=read_slash, act=act,
                    refused=refused)
