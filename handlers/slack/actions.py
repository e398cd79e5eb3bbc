"""POST /slack/actions: the deploy card's buttons (Approve, Reject, Roll back, Lock)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from flask import Blueprint
from flask.typing import ResponseReturnValue

from handlers.commands import environment_problem
from handlers.slack.common import Actor, SlackDeps, deployer_refusal, ephemeral, refuse, reply, run_job
from handlers.slack.intake import Rejected, Signed, endpoint, form

log = logging.getLogger("mainline.slack")

VERBS = {"approve", "reject", "rollback", "lock"}


@dataclass(frozen=True)
class ButtonAction:
    verb: str
    deploy_id: int
    service: str
    environment: str


def parse_action_id(action_id: str) -> ButtonAction:
    """Read `verb:deploy_id:service:environment`, as bot.notify.slack_cards writes it on the card."""
    parts = action_id.split(":", 3)
    if len(parts) != 4 or parts[0] not in VERBS or not (parts[1].isascii() and parts[1].isdigit()) \
            or not parts[2] or not parts[3]:
        raise ValueError(f"not a Mainline button: {action_id[:80]!r}")
    return ButtonAction(parts[0], int(parts[1]), parts[2], parts[3])


def _payload(body: bytes) -> dict | None:
    fields = form(body)
    if not fields or "payload" not in fields:
        return None
    try:
        payload = json.loads(fields["payload"])
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can read
        return None
    return payload if isinstance(payload, dict) else None


def _actor(payload: dict) -> Actor | None:
    def field(name: str, key: str) -> str:
        value = payload.get(name)
        value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, str) else ""  # a signed payload may still be any JSON

    user, channel = field("user", "id"), field("channel", "id") or field("container", "channel_id")
    if not user or not channel:
        return None
    response_url = payload.get("response_url")
    return Actor(user, channel, response_url if isinstance(response_url, str) else "")


def on_button(deps: SlackDeps, actor: Actor, action: ButtonAction) -> None:
    config = deps.pipeline.service_config(action.service)
    problem = environment_problem(config, action.environment)
    if problem:
        reply(deps, actor, ephemeral(problem))
        return
    refusal = deployer_refusal(config, action.environment, actor)
    if refusal:
        refuse(deps, actor, action.service, action.environment, refusal)
        return
    pipeline, deploy = deps.pipeline, f"deploy #{action.deploy_id} of {action.service} in {action.environment}"
    if action.verb in ("approve", "reject"):
        approved = action.verb == "approve"
        pipeline.approve(action.deploy_id, actor.by, approved, "" if approved else "rejected from Slack",
                         where=(action.service, action.environment))
        reply(deps, actor, ephemeral(f"You {'approved' if approved else 'rejected'} {deploy}."))
    elif action.verb == "rollback":
        result = pipeline.rollback(action.service, action.environment, actor.by)
        reply(deps, actor, ephemeral(f"Rolling back {action.service} in {action.environment}: "
                                     f"deploy #{result.get('id')} is {result.get('state')}."))
    else:
        reason = f"locked from the card of deploy #{action.deploy_id}"
        pipeline.lock(action.service, action.environment, actor.by, reason)
        reply(deps, actor, ephemeral(f":lock: You locked {action.service} in {action.environment}."))


def blueprint(deps: SlackDeps) -> Blueprint:
    def read(body: bytes) -> Signed[ButtonAction] | None:
        payload = _payload(body)
        if payload is None:
            raise Rejected(400, "expected a form with a JSON `payload` field")
        if payload.get("type") != "block_actions":
            log.info("slack: ignoring interaction of type %r", payload.get("type"))
            return None
        actor = _actor(payload)
        actions = payload.get("actions")
        if actor is None or not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise Rejected(400, "a block_actions payload needs user, channel and actions")
        try:
            return Signed(actor, parse_action_id(str(actions[0].get("action_id", ""))))
        except ValueError as exc:
            raise Rejected(400, str(exc)) from None

    # Slack shows nothing of a block_actions acknowledgement: every answer goes to response_url.
    def refused(actor: Actor, refusal: str) -> ResponseReturnValue:
        run_job(deps, actor, lambda: reply(deps, actor, ephemeral(refusal)))
        return "", 200

    def act(actor: Actor, action: ButtonAction) -> ResponseReturnValue:
        run_job(deps, actor, lambda: on_button(deps, actor, action))
        return "", 200

    return endpoint("slack_actions", "/slack/actions", "on_slack_action", deps, read=read, act=act, refused=refused)
