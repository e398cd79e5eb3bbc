"""A local stand-in for Slack's Web API and `response_url`s, for the demo and tests.

It serves the methods Mainline calls at its root (so `SLACK_API_URL` can point straight at it),
records what it receives, checks the shape of every call (token, channel, text or blocks,
Block Kit structure, see slack_blocks.py) into `.violations`, and can be told to fail the next
calls with 429 or 5xx.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

from .serving import LocalServer
from .slack_blocks import MAX_TEXT, block_problems, displayed, live_sequences

__all__ = ["Call", "Message", "SlackStandIn", "all_text", "block_problems", "displayed", "live_sequences"]


def all_text(message: Message) -> str:
    """Every mrkdwn string of a message: its text and each block's text and elements."""
    parts = [message.text or ""]

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks)
    return "\n".join(parts)


@dataclass
class Message:
    """One message in a channel as it now reads (chat.update edits it in place)."""

    ts: str
    channel: str
    text: str
    blocks: list
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class Call:
    method: str
    params: dict
    status: int


@dataclass
class _Failures:
    remaining: int = 0
    status: int = 429
    retry_after: int | None = 1
    methods: frozenset[str] | None = None


@dataclass
class _State:
    messages: dict[str, list[Message]] = field(default_factory=dict)
    ephemeral: list[dict] = field(default_factory=list)
    responses: dict[str, list[dict]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class SlackStandIn:
    """A threaded local Slack Web API; `.start()`, `.url`, `.stop()`."""

    def __init__(self, token: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.token = token  # when set, any other token gets `invalid_auth`
        # What the bot token was granted; Slack names them in auth.test's x-oauth-scopes header.
        self.scopes: list[str] = list(BOT_SCOPES)
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._state = _State()
        self._failures = _Failures()
        self._ts = itertools.count(1)
        self._response_ids = itertools.count(1)
        self._server: LocalServer | None = None
        self.app = self._make_app()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SlackStandIn:
        self._server = LocalServer(self.app, self._host, self._port, "slack-standin")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The Web API base URL (methods at its root), e.g. `http://127.0.0.1:PORT/`."""
        if self._server is None:
            raise RuntimeError("the Slack stand-in is not started")
        return f"http://{self._host}:{self._server.port}/"

    def response_url(self) -> str:
        """A fresh `response_url`, as Slack puts in each command and action payload."""
        return f"{self.url}response/{next(self._response_ids)}"

    # -- what it saw -------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._state = _State()
            self._failures = _Failures()

    @property
    def messages(self) -> dict[str, list[Message]]:
        with self._lock:
            return {channel: list(msgs) for channel, msgs in self._state.messages.items()}

    @property
    def responses(self) -> dict[str, list[dict]]:
        """Payloads POSTed to each `response_url`, keyed by its id."""
        with self._lock:
            return {rid: list(payloads) for rid, payloads in self._state.responses.items()}

    @property
    def ephemeral(self) -> list[dict]:
        with self._lock:
            return list(self._state.ephemeral)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._state.calls)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._state.violations)

    def message(self, channel: str, ts: str) -> Message | None:
        for msg in self.messages.get(self.channel_id(channel), []):
            if msg.ts == ts:
                return msg
        return None

    def thread(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self.messages.get(self.channel_id(channel), []) if m.thread_ts == ts]

    def top_level(self, channel: str) -> list[Message]:
        return [m for m in self.messages.get(self.channel_id(channel), []) if m.thread_ts is None]

    @staticmethod
    def channel_id(channel: str) -> str:
        """Slack answers with channel ids; a `#name` maps to a stable fake id."""
        if channel.startswith("#"):
            return "C" + channel[1:].upper().replace("-", "").replace("_", "")[:10]
        return channel

    # -- failure injection -------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 429, retry_after: int | None = 1,
                  methods: set[str] | None = None) -> None:
        """Answer the next `count` calls (of `methods`, default all) with `status`."""
        with self._lock:
            self._failures = _Failures(count, status, retry_after, frozenset(methods) if methods else None)

    def _take_failure(self, method: str) -> _Failures | None:
        with self._lock:
            f = self._failures
            if f.remaining <= 0 or (f.methods is not None and method not in f.methods):
                return None
            f.remaining -= 1
            return _Failures(1, f.status, f.retry_after)

    # -- the app -----------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask("slack_standin")

        @app.post("/response/<rid>")
        def response(rid: str):
            failure = self._take_failure("response_url")
            if failure:
                return _fail_response(failure)
            payload = request.get_json(silent=True)
            if not isinstance(payload, dict):
                self._violate("response_url: body must be a JSON object")
                return Response("invalid_payload", status=400)
            self._check_message("response_url", payload)
            if payload.get("response_type") not in (None, "ephemeral", "in_channel"):
                self._violate("response_url: response_type must be ephemeral or in_channel")
            with self._lock:
                self._state.responses.setdefault(rid, []).append(payload)
            return Response("ok", mimetype="text/plain")

        @app.post("/<method>")
        def api(method: str):
            params = _params()
            failure = self._take_failure(method)
            if failure:
                self._record(method, params, failure.status)
                return _fail_response(failure)
            handler = self._methods.get(method)
            if handler is None:
                self._record(method, params, 404)
                return _ok(False, error="unknown_method")
            token_error = self._check_token(method)
            if token_error:
                self._record(method, params, 200)
                return _ok(False, error=token_error)
            self._record(method, params, 200)
            return handler(params)

        self._methods = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
        }
        return app

    def _check_token(self, method: str) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else request.form.get("token")
        if not token:
            self._violate(f"{method}: no token")
            return "not_authed"
        if self.token is not None and token != self.token:
            return "invalid_auth"
        return None

    def _record(self, method: str, params: dict, status: int) -> None:
        with self._lock:
            self._state.calls.append(Call(method, params, status))

    def _violate(self, problem: str) -> None:
        with self._lock:
            self._state.violations.append(problem)

    def _check_message(self, method: str, params: dict) -> bool:
        text, blocks = params.get("text"), params.get("blocks")
        ok = True
        if not text and not blocks:
            self._violate(f"{method}: neither text nor blocks")
            ok = False
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
            self._violate(f"{method}: text must be a string of at most {MAX_TEXT} characters")
            ok = False
        if blocks is not None:
            for problem in block_problems(blocks):
                self._violate(f"{method}: {problem}")
                ok = False
        if blocks and not text:
            # Slack accepts it, but notifications and screen readers then have nothing to say.
            self._violate(f"{method}: blocks without a fallback text")
        return ok

    def _ts_now(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _auth_test(self, params: dict) -> Response:
        answer = _ok(url="https://mainline-sandbox.slack.com/", team="Mainline sandbox", user="mainline",
                     team_id="T0MAINLINE", user_id="U0MAINLINE", bot_id="B0MAINLINE")
        answer.headers["x-oauth-scopes"] = ",".join(self.scopes)
        return answer

    def _post_message(self, params: dict) -> Response:
        channel = params.get("channel")
        if not channel:
            self._violate("chat.postMessage: no channel")
            return _ok(False, error="channel_not_found")
        if not self._check_message("chat.postMessage", params):
            return _ok(False, error="invalid_blocks")
        channel_id = self.channel_id(str(channel))
        thread_ts = params.get("thread_ts")
        with self._lock:
            msgs = self._state.messages.setdefault(channel_id, [])
            if thread_ts and not any(m.ts == thread_ts for m in msgs):
                self._state.violations.append("chat.postMessage: thread_ts names no message in the channel")
            msg = Message(self._ts_now(), channel_id, params.get("text") or "", params.get("blocks") or [],
                          thread_ts=thread_ts or None)
            msgs.append(msg)
        return _ok(channel=channel_id, ts=msg.ts, message={"text": msg.text, "ts": msg.ts})

    def _update(self, params: dict) -> Response:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel or not ts:
            self._violate("chat.update: channel and ts are required")
            return _ok(False, error="invalid_arguments")
        if str(channel).startswith("#"):
            self._violate("chat.update: channel must be an id, not a #name")
        if not self._check_message("chat.update", params):
            return _ok(False, error="invalid_blocks")
        with self._lock:
            for msg in self._state.messages.get(self.channel_id(str(channel)), []):
                if msg.ts == ts:
                    msg.text = params.get("text") or msg.text
                    if params.get("blocks") is not None:
                        msg.blocks = params["blocks"]
                    msg.updates += 1
                    return _ok(channel=msg.channel, ts=ts, text=msg.text)
        return _ok(False, error="message_not_found")

    def _post_ephemeral(self, params: dict) -> Response:
        if not params.get("channel") or not params.get("user"):
            self._violate("chat.postEphemeral: channel and user are required")
            return _ok(False, error="invalid_arguments")
        if not self._check_message("chat.postEphemeral", params):
            return _ok(False, error="invalid_blocks")
        with self._lock:
            self._state.ephemeral.append(dict(params))
        return _ok(message_ts=self._ts_now())


def _params() -> dict:
    """A Web API call's arguments: a JSON body, or a form whose blocks and attachments are JSON."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    params: dict[str, Any] = request.form.to_dict()
    for key in ("blocks", "attachments"):
        if isinstance(params.get(key), str):
            with contextlib.suppress(ValueError):  # Slack leaves what is not JSON as it came
                params[key] = json.loads(params[key])
    return params


# The scopes slack-app.yml asks for: what a bot token installed from it holds.
BOT_SCOPES = ("chat:write", "chat:write.public", "commands")


def _ok(ok: bool = True, **data) -> Response:
    return Response(json.dumps({"ok": ok, **data}), mimetype="application/json")


def _fail_response(failure: _Failures) -> Response:
    headers = {}
    if failure.status == 429 and failure.retry_after is not None:
        headers["Retry-After"] = str(failure.retry_after)
    error = "ratelimited" if failure.status == 429 else "internal_error"
    return Response(json.dumps({"ok": False, "error": error}), status=failure.status,
                    headers=headers, mimetype="application/json")
