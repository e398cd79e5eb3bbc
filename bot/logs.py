"""Log lines as text or JSON, and never with a secret in them.

Every record that reaches the root handler passes a filter that replaces each known secret value
(from the environment, and from the settings once they are loaded, which covers secrets read from
MAINLINE_SECRETS_DIR) with `***`, in the message, its arguments and any traceback. A secret can
reach a log line by accident: an exception that quotes a URL with a token in it, a subprocess's
stderr, a header dumped while debugging; the filter is the net under all of them."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType

MASK = "***"
SECRET_ENV = ("GITHUB_WEBHOOK_SECRET", "GITHUB_TOKEN", "GITHUB_APP_PRIVATE_KEY", "SLACK_SIGNING_SECRET",
              "SLACK_BOT_TOKEN", "GITHUB_OAUTH_CLIENT_SECRET",
              "MAINLINE_DEMO_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Shorter values would turn every common word into `***` and hide nothing worth hiding.
MIN_SECRET_LENGTH = 6
# Tokens the bot is handed at run time (a GitHub App's installation tokens) are not in the
# environment; their published shapes catch them.
TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9-]{10,})")
NOISY = ("urllib3", "docker", "huey", "werkzeug", "alembic")


def expand(value: str) -> list[str]:
    """A secret, and each body line of it when it is a PEM key (a traceback or a debug dump may
    show the key line by line)."""
    if "PRIVATE KEY" not in value:
        return [value]
    return [value] + [line.strip() for line in value.replace("\\n", "\n").splitlines()
                      if not line.strip().startswith("-----")]


def secret_values(environ: Mapping[str, str]) -> list[str]:
    return [v for name in SECRET_ENV for v in expand(environ.get(name) or "")]


def settings_secrets(settings) -> list[str]:
    """Every SecretStr the settings hold, wherever it came from (environment or secrets dir)."""
    from pydantic import SecretStr

    return [v for field in type(settings).model_fields
            if isinstance(secret := getattr(settings, field), SecretStr)
            for v in expand(secret.get_secret_value())]


class RedactSecrets(logging.Filter):
    """Replace known secret values with `***` in each record; never drops a record."""

    def __init__(self, values: Iterable[str] = ()):
        super().__init__()
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            known = set(self._values) | {v.strip() for v in values if v and len(v.strip()) >= MIN_SECRET_LENGTH}
            # Longest first: a secret that contains another is hidden whole.
            self._values = tuple(sorted(known, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return TOKEN_SHAPES.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, not ours
            return True
        # The arguments are folded into the message so no handler formats them unredacted.
        record.msg, record.args = self.redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


# What a line is about, wherever the code knows it: the deploy step, the event, the delivery.
CONTEXT_FIELDS = ("service", "environment", "sha", "deploy_id", "delivery_id")
_context: ContextVar[Mapping[str, object]] = ContextVar("mainline_log_context", default=MappingProxyType({}))


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Every log line inside the block (in this thread or task) carries these fields, on top of
    those of any enclosing block; None leaves a field as it was."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {sorted(unknown)}")
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class AddContext(logging.Filter):
    """Copy the current log context onto each record (as attributes a formatter can print)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields it has
    (service, environment, sha, deploy_id, delivery_id) and the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        context = {**_context.get(), **{k: getattr(record, k) for k in CONTEXT_FIELDS
                                        if getattr(record, k, None) is not None}}
        line.update({k: context[k] for k in CONTEXT_FIELDS if k in context})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner swaps it), not the one at set-up."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


_filter = RedactSecrets()
_add_context = AddContext()


def setup_logging(level: int = logging.INFO, log_format: str = "text",
                  environ: Mapping[str, str] | None = None) -> RedactSecrets:
    """Install the root handler (text or JSON) with the secrets filter; idempotent.

    When something else configured logging first (a test runner, an embedding program), its
    handlers are kept, and each gets the filter."""
    _filter.add(secret_values(os.environ if environ is None else environ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    if not root.handlers:  # as logging.basicConfig: whoever configured logging first chose the level
        ours = _StderrHandler()
        ours.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
        root.addHandler(ours)
        root.setLevel(level)
    for handler in root.handlers:
        if _add_context not in handler.filters:
            handler.addFilter(_add_context)
        if _filter not in handler.filters:
            handler.addFilter(_filter)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return _filter


def redact_also(values: Iterable[str]) -> None:
    """Hide these values too (secrets the settings read from files, tokens made at run time)."""
    _filter.add(values)
