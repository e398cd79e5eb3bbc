"""POST /github/webhook: check GitHub's signature and headers, record the delivery in the inbox as
received, acknowledge. Nothing is acted on here: the worker dispatches recorded deliveries through
`handlers.github.router`, so a slow deploy never makes GitHub time out and redeliver."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from flask import Blueprint, jsonify, request
from prometheus_client import Counter, Histogram

from bot import webhook
from bot.routing import Router
from bot.settings import Settings

log = logging.getLogger("mainline.web")


class DeliveryInbox(Protocol):
    """Where a delivery is kept until the worker takes it (bot.infra.db.inbox.Inbox)."""

    def record(self, delivery_id: str, event: str, action: str | None, payload: str) -> bool: ...


def blueprint(settings: Settings, inbox: DeliveryInbox, router: Router, *, deliveries: Counter,
              ack_seconds: Histogram) -> Blueprint:
    """`deliveries` counts by event and outcome; `ack_seconds` times the acknowledgement."""
    secret = settings.github_webhook_secret.get_secret_value() if settings.github_webhook_secret else None
    bp = Blueprint("github_intake", __name__)

    @bp.post("/github/webhook")
    def github_webhook():
        started = time.perf_counter()
        body = request.get_data(cache=False)
        if secret is None:
            return jsonify(error="GITHUB_WEBHOOK_SECRET is not set; refusing unsigned webhooks"), 401
        if not webhook.verify(secret, body, request.headers.get("X-Hub-Signature-256")):
            deliveries.labels("unknown", "bad_signature").inc()
            return jsonify(error="missing or wrong X-Hub-Signature-256"), 401
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if not webhook.EVENT.fullmatch(event) or not webhook.DELIVERY.fullmatch(delivery):
            return jsonify(error="X-GitHub-Event (an event name) and X-GitHub-Delivery (a delivery GUID) "
                                 "headers are required"), 400
        document, problem = webhook.json_body(body, request.headers.get("Content-Type"))
        if document is None:
            return jsonify(error=problem), 400
        payload, problem = webhook.parse(document)
        if payload is None:
            return jsonify(error=problem), 400
        action = webhook.action_of(payload)
        if event == "ping":
            return jsonify(ok="pong"), 200
        if not router.accepts(event, action):
            named = event + (f".{action}" if action else "")
            log.info("ignoring %s delivery %s: no handler", named, delivery)
            deliveries.labels(event, "ignored").inc()
            return jsonify(ignored=f"Mainline does not act on {named}"), 202
        # Stored as received (a form's `payload` field as sent): the worker parses these bytes with
        # the same parser (orjson).
        if not inbox.record(delivery, event, action, document.decode("utf-8")):
            deliveries.labels(event, "duplicate").inc()
            return jsonify(duplicate=delivery), 200
        deliveries.labels(event, "queued").inc()
        ack_seconds.observe(time.perf_counter() - started)
        return jsonify(queued=delivery), 202

    return bp
