"""What the Slack handlers share: their dependencies, who may do what, how to answer, and running
the slow part after the acknowledgement. Reading and verifying requests is handlers/slack/intake.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from bot.config import DeployConfig
from bot.errors import MainlineError, NotFoundError
from bot.ports import Clock
from handlers.commands import CommandPipeline

log = logging.getLogger("mainline.slack")


class SlackChat(Protocol):
    """How the handlers answer; bot.notify.slack_reporter.SlackReporter implements it."""

    def respond(self, response_url: str, payload: dict) -> None: ...

    def post_ephemeral(self, channel: str, user: str, text: str, blocks: list | None = None) -> None: ...


RunLater = Callable[[Callable[[], None]], None]


def thread_pool_runner(max_workers: int = 4) -> RunLater:
    """Run jobs on a small pool of threads: enough for a few commands at once."""
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="slack-job")

    def run_later(job: Callable[[], None]) -> None:
        pool.submit(job)

    return run_later


@dataclass
class SlackDeps:
    signing_secret: str
    pipeline: CommandPipeline
    chat: SlackChat
    clock: Clock
    run_later: RunLater = field(default_factory=thread_pool_runner)
    allowed_channels: frozenset[str] = frozenset()  # channel ids; empty allows every channel
    admins: frozenset[str] = frozenset()  # MAINLINE_ADMINS: who may freeze and unfreeze


# -- answers ------------------------------------------------------------------------------


def ephemeral(text: str) -> dict:
    return {"response_type": "ephemeral", "text": text}


def in_channel(text: str) -> dict:
    return {"response_type": "in_channel", "text": text}


# -- who may do what ------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who pressed or typed, where, and where to answer."""

    user_id: str
    channel_id: str
    response_url: str = ""

    @property
    def by(self) -> str:
        return f"slack:{self.user_id}"


def channel_refusal(deps: SlackDeps, actor: Actor) -> str | None:
    if deps.allowed_channels and actor.channel_id not in deps.allowed_channels:
        return "Mainline does not take commands in this channel."
    return None


def deployer_refusal(config: DeployConfig, environment: str, actor: Actor) -> str | None:
    """Why `actor` may not change `environment` of the service, or None when they may."""
    if actor.by in config.environments[environment].deployers:
        return None
    allowed = [d.removeprefix("slack:") for d in config.environments[environment].deployers if d.startswith("slack:")]
    who = ", ".join(f"<@{u}>" for u in allowed) or "nobody on Slack"
    return (f"You are not a deployer of {config.service} in {environment}. "
            f"`.github/deploy.yml` lets {who} do that.")


def refuse(deps: SlackDeps, actor: Actor, service: str, environment: str, reason: str) -> None:
    """Tell the person why not, only them, and keep a trace in the event log."""
    deps.pipeline.record_event(service, environment, kind="refused", message=reason, by=actor.by)
    reply(deps, actor, ephemeral(f":no_entry: {reason}"))


def reply(deps: SlackDeps, actor: Actor, payload: dict) -> None:
    if actor.response_url:
        deps.chat.respond(actor.response_url, {"replace_original": False, **payload})
    else:
        deps.chat.post_ephemeral(actor.channel_id, actor.user_id, payload["text"])


def run_job(deps: SlackDeps, actor: Actor, job: Callable[[], None]) -> None:
    """Run `job` after the acknowledgement; whatever it raises, the person hears about it."""

    def guarded() -> None:
        try:
            job()
        except NotFoundError as exc:
            _tell(deps, actor, f":grey_question: {exc}")
        except MainlineError as exc:
            _tell(deps, actor, f":warning: {exc}")
        except Exception:
            log.exception("slack: command failed for %s", actor.by)
            _tell(deps, actor, ":warning: Something went wrong on our side; it has been logged.")

    deps.run_later(guarded)


def _tell(deps: SlackDeps, actor: Actor, text: str) -> None:
    try:
        reply(deps, actor, ephemeral(text))
    except MainlineError as exc:
        log.warning("slack: could not answer %s: %s", actor.by, exc)
