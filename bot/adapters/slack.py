"""Slack: live deploy cards, notifications in their threads, ephemeral replies, response_urls.

Slack never holds a deploy back: `notify()` only records the newest state of a deploy and
returns; a background thread delivers it through the `slack_api` tenacity policy. While Slack
is down the deploy goes on, and when Slack answers again the card jumps to the latest state.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.errors import AuthError, MainlineError, TransientError
from bot.escape import slack_text
from bot.ports import DeployNotice
from bot.retry import RetryAfter, rate_limit_wait, slack_api

log = logging.getLogger("mainline.slack")

SLACK_API_URL = "https://slack.com/api/"
MAX_THREAD_BACKLOG = 50  # lines kept per deploy while Slack is unreachable

STATE_EMOJI = {
    "queued": ":hourglass_flowing_sand:",
    "gating": ":mag:",
    "building": ":hammer_and_wrench:",
    "rolling_out": ":rocket:",
    "verifying": ":stethoscope:",
    "live": ":white_check_mark:",
    "rolling_back": ":rewind:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "reverting": ":arrows_counterclockwise:",
    "reverted": ":back:",
    "failed": ":x:",
    "superseded": ":fast_forward:",
}
FINISHED = {"live", "rolled_back", "reverted", "failed", "superseded"}
# States people must hear about; the last three are broadcast from the thread to the channel.
ANNOUNCED = {"live", "failed", "rolled_back", "reverted"}
BROADCAST = {"failed", "rolled_back", "reverted"}


# -- the Web API, errors mapped and retried -------------------------------------------------


def _sdk_logger() -> logging.Logger:
    # slack-sdk logs whole requests when its logger is at DEBUG (or unset), so a verbose root
    # logger could print a token; and it logs every connection error at ERROR although our retry
    # policy logs each failed attempt already. Only its critical lines get through.
    sdk_log = logging.getLogger("mainline.slack.sdk")
    sdk_log.setLevel(logging.CRITICAL)
    return sdk_log


def _mapped(method: str, exc: SlackApiError) -> MainlineError:
    status = exc.response.status_code
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = data.get("error", f"HTTP {status}")
    if status == 429 or error == "ratelimited":
        return RetryAfter(f"slack {method}: rate limited", wait=rate_limit_wait(dict(exc.response.headers or {})))
    if status >= 500:
        return TransientError(f"slack {method}: HTTP {status}")
    if error in ("not_authed", "invalid_auth", "account_inactive", "token_revoked", "missing_scope"):
        return AuthError(f"slack {method}: {error}")
    return MainlineError(f"slack {method}: {error}")


class SlackWeb:
    """The few Web API calls Mainline makes, each retried by a tenacity policy."""

    def __init__(self, token: str, base_url: str = SLACK_API_URL, policy=slack_api, timeout: int = 10):
        self._client = WebClient(token=token, base_url=base_url, timeout=timeout, logger=_sdk_logger(),
                                 retry_handlers=[])
        self._policy = policy
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SlackWeb(base_url={self._client.base_url!r})"

    def allows_response_url(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.netloc == "hooks.slack.com":
            return True
        base = urlsplit(self._client.base_url)
        return (parts.scheme, parts.netloc) == (base.scheme, base.netloc) and not parts.username

    def call(self, method: str, **params) -> dict:
        def attempt() -> dict:
            try:
                data = self._client.api_call(method, json=params).data
            except SlackApiError as exc:
                raise _mapped(method, exc) from None
            except OSError as exc:  # connection refused or reset, timeouts
                raise TransientError(f"slack {method}: {type(exc).__name__}") from None
            if isinstance(data, bytes):  # only file downloads answer in bytes, and we call none
                raise MainlineError(f"slack {method}: a binary answer where JSON was expected")
            return data

        return self._policy(attempt)()

    def respond(self, response_url: str, payload: dict) -> None:
        if not self.allows_response_url(response_url):
            # A signed request names where we POST: only Slack's hooks (or the configured
            # Slack host, e.g. the local stand-in), never an address of the requester's choice.
            raise MainlineError(f"refusing a response_url outside Slack: {response_url[:80]!r}")

        def attempt() -> None:
            client = WebhookClient(response_url, timeout=self._timeout, logger=_sdk_logger(), retry_handlers=[])
            try:
                resp = client.send_dict(payload)
            except OSError as exc:
                raise TransientError(f"slack response_url: {type(exc).__name__}") from None
            if resp.status_code == 429:
                raise RetryAfter("slack response_url: rate limited", wait=rate_limit_wait(dict(resp.headers or {})))
            if resp.status_code >= 500:
                raise TransientError(f"slack response_url: HTTP {resp.status_code}")
            if resp.status_code != 200:
                raise MainlineError(f"slack response_url: HTTP {resp.status_code} {resp.body[:200]}")

        self._policy(attempt)()


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


# -- the reporter ---------------------------------------------------------------------------


@dataclass
class _Pending:
    latest: DeployNotice
    lines: list[tuple[str, bool]] = field(default_factory=list)  # (text, broadcast)


class SlackReporter:
    """bot.ports.Reporter for Slack, plus the replies the Slack handlers send."""

    def __init__(self, web: SlackWeb, default_channel: str, slack_users: Mapping[str, str] | None = None,
                 store: CardStore | None = None, retry_pause: float = 5.0, public_url: str | None = None):
        self._web = web
        self._public_url = public_url.rstrip("/") if public_url else None  # deploy pages link from cards
        self._default_channel = default_channel
        self._slack_users = dict(slack_users or {})
        self._store = store or MemoryCardStore()
        self._retry_pause = retry_pause  # between rounds once the tenacity policy gave up
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._started: set[int] = set()
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    # Reporter --------------------------------------------------------------------------------

    def notify(self, notice: DeployNotice) -> None:
        """Queue the notice for delivery and return at once."""
        if notice.kind == "gate" and notice.data.get("status") == "pass":
            return  # a gate that passed is a check run on GitHub, not news in the channel
        if notice.kind == "alert":
            self._alert(notice)
            return
        if notice.deploy_id == 0:
            return  # no deploy (an invalid config): GitHub's failing check run says which line
        with self._cond:
            first = notice.deploy_id not in self._started and notice.state != "queued"
            if first:
                self._started.add(notice.deploy_id)
            line = (thread_line(notice, self._slack_users, first), notice.state in BROADCAST)
            pending = self._pending.get(notice.deploy_id)
            if pending is None:
                self._pending[notice.deploy_id] = _Pending(notice, [line])
            else:
                pending.latest = notice
                pending.lines = [*pending.lines, line][-MAX_THREAD_BACKLOG:]
            self._ensure_worker()
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notice is on Slack; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5)

    # replies for the handlers ----------------------------------------------------------------

    def respond(self, response_url: str, payload: dict) -> None:
        self._web.respond(response_url, payload)

    def _alert(self, notice: DeployNotice) -> None:
        """A message about no one deploy (the watchdog's), posted once, off the caller's thread."""
        channel = notice.data.get("slack_channel") or self._default_channel
        text = f":rotating_light: *{slack_text(notice.service, 100)}* in {slack_text(notice.environment, 100)}: " \
               f"{slack_text(notice.message, 1000)}"

        def post() -> None:
            try:
                self.post_message(channel, text)
            except MainlineError as exc:
                log.warning("slack: could not post the alert on %s: %s", notice.service, exc)

        threading.Thread(target=post, name="slack-alert", daemon=True).start()

    def post_ephemeral(self, channel: str, user: str, text: str, blocks: list | None = None) -> None:
        params: dict[str, object] = {"channel": channel, "user": user, "text": text}
        if blocks:
            params["blocks"] = blocks
        self._web.call("chat.postEphemeral", **params)

    def post_message(self, channel: str, text: str, blocks: list | None = None, thread_ts: str | None = None) -> dict:
        params: dict[str, object] = {"channel": channel, "text": text}
        if blocks:
            params["blocks"] = blocks
        if thread_ts:
            params["thread_ts"] = thread_ts
        return self._web.call("chat.postMessage", **params)

    # delivery --------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="slack-reporter", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                deploy_id, pending = self._pending.popitem(last=False)
                self._busy = True
            retry_later = False
            try:
                self._deliver(deploy_id, pending)
            except TransientError as exc:
                log.warning("slack: deploy #%s card not delivered yet (%s); will catch up", deploy_id, exc)
                retry_later = True
            except MainlineError as exc:
                log.warning("slack: deploy #%s card dropped: %s", deploy_id, exc)
            except Exception:  # a reporter must never take the worker down with it
                log.exception("slack: deploy #%s card failed", deploy_id)
            with self._cond:
                if retry_later:
                    self._requeue(deploy_id, pending)
                self._busy = False
                self._cond.notify_all()
                if retry_later:
                    self._cond.wait_for(lambda: self._closed, self._retry_pause)

    def _requeue(self, deploy_id: int, pending: _Pending) -> None:
        # What arrived meanwhile is newer: its state wins, its lines follow the unsent ones.
        newer = self._pending.pop(deploy_id, None)
        if newer is not None:
            pending.latest = newer.latest
            pending.lines = (pending.lines + newer.lines)[-MAX_THREAD_BACKLOG:]
        self._pending[deploy_id] = pending
        self._pending.move_to_end(deploy_id, last=False)

    def _deliver(self, deploy_id: int, pending: _Pending) -> None:
        text, blocks = card(pending.latest, self._slack_users, self._public_url)
        ref = self._store.get(deploy_id)
        fresh = ref is None
        if ref is None:
            channel = pending.latest.data.get("slack_channel") or self._default_channel
            answer = self._web.call("chat.postMessage", channel=channel, text=text, blocks=blocks)
            ref = CardRef(answer["channel"], answer["ts"])
            self._store.put(deploy_id, ref)
        while pending.lines:
            line, broadcast = pending.lines[0]
            params: dict[str, object] = {"channel": ref.channel, "thread_ts": ref.ts, "text": line}
            if broadcast:
                params["reply_broadcast"] = True
            self._web.call("chat.postMessage", **params)
            pending.lines.pop(0)
        if not fresh:
            self._web.call("chat.update", channel=ref.channel, ts=ref.ts, text=text, blocks=blocks)


def slack_reporter(token: str, base_url: str, default_channel: str,
                   slack_users: Mapping[str, str] | None = None, store: CardStore | None = None,
                   public_url: str | None = None) -> SlackReporter:
    """The reporter as the app factory wires it: settings' token and SLACK_API_URL."""
    return SlackReporter(SlackWeb(token, base_url), default_channel, slack_users, store, public_url=public_url)

