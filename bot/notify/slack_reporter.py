"""The Slack reporter: live deploy cards, notifications in their threads, ephemeral replies.

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

from bot.errors import MainlineError, TransientError
from bot.escape import slack_text
from bot.infra.slack.web import SlackWeb
from bot.notify.slack_cards import (
    BROADCAST,
    CardRef,
    CardStore,
    MemoryCardStore,
    card,
    thread_line,
)
from bot.ports import DeployNotice

log = logging.getLogger("mainline.slack")

MAX_THREAD_BACKLOG = 50  # lines kept per deploy while Slack is unreachable


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
