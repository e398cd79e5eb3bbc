"""How a canary ends when it does not go on: failed (a bad release: roll back and revert) or
stuck (it could not be judged: fail the deploy, revert nothing)."""

from __future__ import annotations

from bot.errors import MainlineError, RolloutError


class CanaryFailedError(RolloutError):
    """The canary's analysis failed, or a person aborted it: evidence against the release."""


class CanaryStuckError(MainlineError):
    """The canary could not be judged (too little traffic, a Prometheus not allowed): the
    release is neither good nor bad, so the deploy fails without a rollback or a revert."""
