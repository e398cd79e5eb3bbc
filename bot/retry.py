"""The named tenacity policies. Adapters retry only transient errors, through these."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_attempt

from bot.errors import TransientError

log = logging.getLogger("mainline.retry")


class RetryAfter(TransientError):
    """Transient, with the server's own word on how long to wait (seconds)."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


def rate_limit_wait(headers: dict, now: float | None = None) -> float | None:
    """Seconds to wait from `Retry-After`, or from `x-ratelimit-reset` when none remain."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if "retry-after" in lowered:
        try:
            return max(0.0, float(lowered["retry-after"]))
        except ValueError:
            return None
    if str(lowered.get("x-ratelimit-remaining", "")) == "0" and "x-ratelimit-reset" in lowered:
        try:
            return max(0.0, float(lowered["x-ratelimit-reset"]) - (now if now is not None else time.time()))
        except ValueError:
            return None
    return None


def _wait(base: float, cap: float) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        told = getattr(exc, "wait", None)
        if told is not None:
            return min(float(told), cap)
        return min(base * (2 ** (state.attempt_number - 1)), cap)

    return wait


def _log(name: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: attempt %d failed (%s); retrying in %.1fs", name, state.attempt_number, exc,
                    state.next_action.sleep if state.next_action else 0)

    return before_sleep


def policy(name: str, attempts: int = 5, base: float = 0.5, cap: float = 60.0):
    """A decorator retrying TransientError (and RetryAfter's own wait), capped, logged."""
    return retry(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(attempts),
        wait=_wait(base, cap),
        before_sleep=_log(name),
        reraise=True,
    )


# The named policies.
github_api = policy("github", attempts=5, base=1.0, cap=120.0)
slack_api = policy("slack", attempts=6, base=1.0, cap=60.0)
aws_api = policy("aws", attempts=6, base=0.5, cap=30.0)
registry_io = policy("registry", attempts=4, base=0.5, cap=10.0)
# Docker engine and load-balancer hiccups (a container gone between list and inspect, a 404 or
# 409 from a concurrent removal, a busy daemon): each attempt observes the world afresh.
docker_api = policy("docker", attempts=5, base=0.5, cap=8.0)
