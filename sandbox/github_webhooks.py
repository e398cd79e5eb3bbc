"""Webhooks the stand-in sends: real example payloads with our values, validated, signed, posted."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import hmac
import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import requests

from .github_contracts import webhook_errors

log = logging.getLogger(__name__)
EXAMPLES = Path(__file__).parent / "contracts" / "examples"


@functools.cache
def _template(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def from_template(name: str, values: dict) -> dict:
    """A real example payload (`pull_request.closed`, `push` …) with `values` laid over it."""
    payload = copy.deepcopy(_template(name))
    return _overlay(payload, values)


def _overlay(base: dict, values: dict) -> dict:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = value
    return base


CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}


def encode(payload: dict, content_type: str = "json") -> tuple[bytes, str]:
    """The body GitHub posts and its Content-Type: the JSON, or (`form`, a repository webhook's
    default) the JSON in a form's `payload` field. The signature is over these very bytes."""
    document = json.dumps(payload)
    if content_type == "form":
        return urlencode({"payload": document}).encode("ascii"), CONTENT_TYPES["form"]
    return document.encode(), CONTENT_TYPES["json"]


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """One webhook sent (or attempted), as GitHub's delivery log shows it."""

    id: str
    event: str
    action: str | None
    payload: dict
    status_code: int | None = None  # None: not answered (connection failed)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)


class WebhookSender:
    """Posts webhooks in order from one background thread, as GitHub delivers after the fact."""

    def __init__(self, url: str | None, secret: str | None, report_violation, validate: bool):
        self.url = url
        self.secret = secret
        self.content_type = "json"  # or "form", as a repository webhook is configured by default
        self.validate = validate
        self.report_violation = report_violation
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread:
            # Deliveries still queued are dropped: nobody listens for them once we stop.
            with contextlib.suppress(queue.Empty):
                while (dropped := self._queue.get_nowait()) is not None:
                    dropped.error = "not delivered: the local GitHub stopped"
                    dropped.done.set()
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        self._session.close()

    def send(self, event: str, definition: str, payload: dict) -> Delivery:
        """Check `payload` against octokit's `definition`, then queue it for delivery."""
        if self.validate:
            for error in webhook_errors(definition, payload):
                self.report_violation(f"webhook {event} ({definition}): {error}")
        delivery = Delivery(str(uuid.uuid4()), event, payload.get("action"), payload)
        self.deliveries.append(delivery)
        if self.url is None or self._thread is None:
            delivery.done.set()
        else:
            self._queue.put(delivery)
        return delivery

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued webhook has been answered or has failed."""
        for delivery in list(self.deliveries):
            if not delivery.done.wait(timeout):
                raise TimeoutError(f"webhook {delivery.event} {delivery.id} still in flight")

    def _run(self) -> None:
        while (delivery := self._queue.get()) is not None:
            self._post(delivery)

    def _post(self, delivery: Delivery) -> None:
        body, mime = encode(delivery.payload, self.content_type)
        headers = {
            "Content-Type": mime,
            "User-Agent": "GitHub-Hookshot/sandbox",
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.id,
            "X-GitHub-Hook-ID": "1",
        }
        if self.secret is not None:
            headers["X-Hub-Signature-256"] = signature(self.secret, body)
        try:
            # The URL may have been unset since this was queued: "" fails as a delivery error too.
            response = self._session.post(self.url or "", data=body, headers=headers, timeout=10)
            delivery.status_code = response.status_code
        except requests.RequestException as error:
            # GitHub records a failed delivery and moves on; so do we.
            delivery.error = str(error)
            log.warning("webhook %s %s not delivered: %s", delivery.event, delivery.id, error)
        finally:
            delivery.done.set()
