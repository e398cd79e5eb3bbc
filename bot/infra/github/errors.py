"""GitHub's refusals as Mainline's errors: retry-or-not decided from the status and headers."""

from __future__ import annotations

import requests
from github import GithubException

from bot.errors import AuthError, MainlineError, NotFoundError, TransientError
from bot.retry import RetryAfter, rate_limit_wait

# GitHub asks for at least a minute when a secondary limit names no Retry-After.
SECONDARY_LIMIT_WAIT = 60.0


class GitHubRequestError(MainlineError):
    """GitHub understood the request and refused it (422 validation, 409 conflict, 405 not
    mergeable …). Not worth retrying as is."""

    def __init__(self, status: int, message: str, errors: list | None = None):
        self.status = status
        self.message = message
        self.errors = errors or []
        super().__init__(f"{status} {message}")




def translate(exc: GithubException, what: str) -> MainlineError:
    """Turn a PyGithub error into ours, deciding retry-or-not from status and headers."""
    status = exc.status or 0
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    data = exc.data if isinstance(exc.data, dict) else {}
    message = exc.message or data.get("message") or str(exc.data or "")
    text = f"{what}: {status} {message}".strip()
    lowered = message.lower()
    told = rate_limit_wait(headers)
    secondary = "secondary rate limit" in lowered or lowered.endswith("retry your request again later.")
    exhausted = str(headers.get("x-ratelimit-remaining", "")) == "0"
    if status == 429 or (status == 403 and (secondary or exhausted or "retry-after" in headers)):
        if told is None and secondary:
            told = SECONDARY_LIMIT_WAIT
        return RetryAfter(text, told)
    if status >= 500:
        return RetryAfter(text, told) if told is not None else TransientError(text)
    if status in (401, 403):
        return AuthError(text)
    if status == 404:
        return NotFoundError(text)
    return GitHubRequestError(status, text, data.get("errors"))


def translate_response(response: requests.Response, what: str) -> MainlineError:
    try:
        data = response.json()
    except ValueError:
        data = {"message": response.text[:200]}
    return translate(GithubException(response.status_code, data, dict(response.headers)), what)
