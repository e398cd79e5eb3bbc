"""GitHub's refusals as Mainline's errors: retry-or-not decided from the status and headers."""

from __future__ import annotations

import re

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




class PermissionDenied(AuthError):
    """GitHub refused the call for want of a permission: a personal token may not write check
    runs, or the App's installation was not granted `permissions` (from GitHub's
    X-Accepted-GitHub-Permissions header, e.g. {"checks": "write"})."""

    def __init__(self, text: str, permissions: dict[str, str], personal_token: bool):
        self.permissions = permissions
        self.personal_token = personal_token
        super().__init__(text)


_PERMISSION = re.compile(r"([a-z_]+)=(read|write|admin)")


def _denied(text: str, message: str, headers: dict) -> PermissionDenied | None:
    accepted = dict(_PERMISSION.findall(str(headers.get("x-accepted-github-permissions", ""))))
    if "personal access token" in message.lower():
        return PermissionDenied(f"{text} (GitHub lets only a GitHub App do this: configure GITHUB_APP_ID)",
                                accepted, personal_token=True)
    if accepted:
        named = ", ".join(f"{k}: {v}" for k, v in accepted.items())
        return PermissionDenied(f"{text}: the GitHub App's installation lacks the permission {named}; grant it "
                                f"in the App's settings (Permissions) and accept it on the installation",
                                accepted, personal_token=False)
    return None


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
    if status == 403:
        return _denied(text, message, headers) or AuthError(text)
    if status == 401:
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
