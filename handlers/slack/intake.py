"""The edge both Slack endpoints share: Slack's signature, the form it posts, and the one preamble
(verify, read, check the channel, then act). Each endpoint says only how it reads its request and
what it does with it; answering within Slack's three seconds is the acts' job (run_job)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import parse_qsl

from flask import Blueprint, Request, jsonify, request
from flask.typing import ResponseReturnValue

from handlers.slack.common import Actor, SlackDeps, channel_refusal

MAX_AGE_SECONDS = 5 * 60  # Slack's own replay window
# Slack sends seconds since the epoch (ten digits today) and `v0=` with 64 hex digits. Anything
# else is refused before it reaches int() or compare_digest, which raise on non-ASCII input.
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)

T = TypeVar("T")


class Rejected(Exception):
    """The request is not one we act on: answered `status` with `message`, nothing else happens."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Signed(Generic[T]):
    """A request Slack signed and we could read: who sent it, and what they asked."""

    actor: Actor
    asked: T


Reader = Callable[[bytes], Signed[T] | None]  # None: nothing to do, acknowledge with an empty 200
Act = Callable[[Actor, T], ResponseReturnValue]


def endpoint(name: str, rule: str, view_name: str, deps: SlackDeps, *, read: Reader[T], act: Act[T],
             refused: Callable[[Actor, str], ResponseReturnValue]) -> Blueprint:
    """A blueprint with one POST route: `read` the verified body (raising Rejected for a 4xx),
    answer `refused` when the channel may not command Mainline, else `act`."""
    bp = Blueprint(name, __name__)

    def view() -> ResponseReturnValue:
        try:
            signed = read(verify(deps, request))
        except Rejected as exc:
            return error(exc.status, exc.message)
        if signed is None:
            return "", 200
        refusal = channel_refusal(deps, signed.actor)
        if refusal:
            return refused(signed.actor, refusal)
        return act(signed.actor, signed.asked)

    bp.add_url_rule(rule, view_name, view, methods=["POST"])
    return bp


def verify(deps: SlackDeps, req: Request) -> bytes:
    """The raw body when Slack signed it within the last five minutes; Rejected otherwise."""
    body = req.get_data(cache=True)
    timestamp = req.headers.get("X-Slack-Request-Timestamp", "")
    signature = req.headers.get("X-Slack-Signature", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        raise Rejected(401, "missing or malformed Slack signature headers")
    if abs(deps.clock.now().timestamp() - int(timestamp)) > MAX_AGE_SECONDS:
        raise Rejected(401, "request timestamp is more than 5 minutes from now")
    try:
        body.decode("utf-8")  # Slack signs UTF-8 text; anything else is not from Slack
    except UnicodeDecodeError:
        raise Rejected(400, "the request body is not UTF-8") from None
    # Slack's documented base string, v0:TIMESTAMP:BODY, signed with HMAC-SHA256.
    expected = "v0=" + hmac.new(deps.signing_secret.encode(), b"v0:" + timestamp.encode() + b":" + body,
                                hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Rejected(401, "bad Slack signature")
    return body


def form(body: bytes) -> dict[str, str] | None:
    """The url-encoded form Slack posts, or None when it is not one."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return None
    return dict(pairs)


def error(status: int, message: str) -> ResponseReturnValue:
    return jsonify({"error": message}), status
