"""Slack deploy cards and thread lines: pure rendering of a DeployNotice, and where each card lives."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.canary.analysis import lines as canary_lines
from bot.escape import slack_text
from bot.ports import DeployNotice

STATE_EMOJI = {
    "queued": ":hourglass_flowing_sand:",
    "gating": ":mag:",
    "building": ":hammer_and_wrench:",
    "rolling_out": ":rocket:",
    "verifying": ":stethoscope:",
    "live": ":white_check_mark:",
    "rolling_back": ":rewind:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "bisecting": ":mag_right:",
    "reverting": ":arrows_counterclockwise:",
    "reverted": ":back:",
    "failed": ":x:",
    "superseded": ":fast_forward:",
}
FINISHED = {"live", "rolled_back", "reverted", "failed", "superseded"}
# States people must hear about; the last three are broadcast from the thread to the channel.
ANNOUNCED = {"live", "failed", "rolled_back", "reverted"}
BROADCAST = {"failed", "rolled_back", "reverted"}


# -- where each deploy's card lives ---------------------------------------------------------


@dataclass(frozen=True)
class CardRef:
    channel: str  # the channel id Slack answered with (chat.update needs the id)
    ts: str


class CardStore(Protocol):
    """Remembers which message is each deploy's card, so it is posted once and then edited."""

    def get(self, deploy_id: int) -> CardRef | None: ...

    def put(self, deploy_id: int, ref: CardRef) -> None: ...


class MemoryCardStore:
    def __init__(self) -> None:
        self._refs: dict[int, CardRef] = {}
        self._lock = threading.Lock()

    def get(self, deploy_id: int) -> CardRef | None:
        with self._lock:
            return self._refs.get(deploy_id)

    def put(self, deploy_id: int, ref: CardRef) -> None:
        with self._lock:
            self._refs[deploy_id] = ref


# -- what a card and a thread line say (pure) -----------------------------------------------


def mentions(logins, slack_users: Mapping[str, str]) -> str:
    """`<@U…>` for each GitHub login we can map, `@login` (inert text) for the others."""
    return " ".join(f"<@{slack_users[login]}>" if login in slack_users else f"@{slack_text(login, 100)}"
                    for login in logins or ())


def action_id(verb: str, notice: DeployNotice) -> str:
    """`verb:deploy_id:service:environment`, what handlers.slack.actions reads back."""
    return f"{verb}:{notice.deploy_id}:{notice.service}:{notice.environment}"[:255]


def _button(label: str, verb: str, notice: DeployNotice, style: str | None = None) -> dict:
    button = {"type": "button", "text": {"type": "plain_text", "text": label},
              "action_id": action_id(verb, notice), "value": str(notice.deploy_id)}
    if style:
        button["style"] = style
    return button


def _buttons(notice: DeployNotice) -> list[dict]:
    if notice.state in FINISHED and notice.state != "live":
        return [_button("Lock", "lock", notice)]
    if notice.state == "live":
        return [_button("Roll back", "rollback", notice, "danger"), _button("Lock", "lock", notice)]
    return [_button("Approve", "approve", notice, "primary"), _button("Reject", "reject", notice, "danger"),
            _button("Roll back", "rollback", notice), _button("Lock", "lock", notice)]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(mrkdwn: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _context(mrkdwn: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def card(notice: DeployNotice, slack_users: Mapping[str, str], public_url: str | None = None) -> tuple[str, list[dict]]:
    """The deploy card: fallback text and Block Kit blocks for the notice's state."""
    emoji = STATE_EMOJI.get(notice.state, ":grey_question:")
    state = notice.state.replace("_", " ")
    headline = f"{emoji} *{slack_text(state, 50)}* · `{slack_text(notice.sha[:7])}` · deploy #{notice.deploy_id}"
    details = []
    if notice.requested_by:
        details.append(f"requested by {slack_text(notice.requested_by, 200)}")
    if notice.pull_numbers:
        details.append("PRs " + ", ".join(f"#{n}" for n in notice.pull_numbers))
    authors = mentions(notice.data.get("authors"), slack_users)
    if authors:
        details.append(f"authors {authors}")
    body = headline + ("\n" + " · ".join(details) if details else "")
    title = _clip(f"{notice.service} → {notice.environment}", 150)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        _section(_clip(body, 3000)),
    ]
    if notice.kind == "gate" and notice.data.get("status") != "pass" and gate_reason(notice):
        blocks.append(_section(f":no_entry: Blocked: {slack_text(gate_reason(notice), 2900)}"))
    if notice.message:
        blocks.append(_context(slack_text(notice.message, 2900)))
    story = notice.data.get("story")  # a bisected release: each round, the culprit, who was held back
    if isinstance(story, list) and story:
        blocks.append(_section(slack_text("\n".join(f"• {line}" for line in story[:30]), 2900)))
    verdict = "\n".join(canary_lines(notice.data))
    if verdict:
        blocks.append(_section(":bird: " + slack_text(verdict, 2900)))
    if public_url and notice.deploy_id:
        blocks.append(_context(f"<{public_url}/deploys/{notice.deploy_id}|Deploy log>"))
    blocks.append({"type": "actions", "block_id": f"deploy-{notice.deploy_id}", "elements": _buttons(notice)})
    text = slack_text(f"{notice.service} {notice.sha[:7]} → {notice.environment}: {state}", 300)
    return text, blocks


def gate_reason(notice: DeployNotice) -> str:
    """Why the gate holds the deploy. The pipeline's `waiting` event puts the deploy's own
    (empty) reason over the gate's in `data`, so the gate's words are read from the message."""
    reason = notice.data.get("reason")
    if reason:
        return reason
    gate = notice.data.get("gate")
    return notice.message.removeprefix(f"waiting on {gate}: ") if gate else notice.message


def thread_line(notice: DeployNotice, slack_users: Mapping[str, str], first: bool) -> str:
    """The detail posted in the card's thread for one notice."""
    who = mentions(notice.data.get("authors"), slack_users)
    where = f"{slack_text(notice.service, 100)} `{slack_text(notice.sha[:7])}` in {slack_text(notice.environment, 100)}"
    # Messages and reasons quote the repository (check output, probe bodies, lock reasons).
    message = slack_text(notice.message, 2500)
    if notice.kind == "gate":
        reason = slack_text(gate_reason(notice), 2500)
        verb = "is waiting on" if notice.data.get("status") == "wait" else "is blocked by"
        gate = slack_text(notice.data.get("gate") or "", 100)
        line = f":no_entry: {where} {verb} {f'the {gate} gate' if gate else 'a gate'}: {reason}"
    elif notice.state == "live":
        line = f":white_check_mark: {where} is live. {message}".rstrip()
    elif notice.state in ANNOUNCED:
        line = f"{STATE_EMOJI[notice.state]} {where} {notice.state.replace('_', ' ')}: {message}"
    elif first and notice.state not in ("queued",):
        line = f":rocket: Started deploying {where}: {message}"
    else:
        line = f"{STATE_EMOJI.get(notice.state, '')} {message}".strip()
    if who and (notice.kind == "gate" or notice.state in ANNOUNCED):
        line += f"\ncc {who}"
    return _clip(line, 3000)
