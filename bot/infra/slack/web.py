"""Slack's Web API and response_urls, through the `slack_api` tenacity policy."""


from __future__ import annotations

import logging
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.errors import AuthError, MainlineError, TransientError
from bot.retry import RetryAfter, rate_limit_wait, slack_api

log = logging.getLogger("mainline.slack")

SLACK_API_URL = "https://slack.com/api/"


# -- the Web API, errors mapped and retried -------------------------------------------------


def _sdk_logger() -> logging.Logger:
    # slack-sdk logs whole requests when its logger is at DEBUG (or unset), so a verbose root
    # logger could print a token; and it logs every connection error at ERROR although our retry
    # policy logs each failed attempt already. Only its critical lines get through.
    sdk_log = logging.getLogger("mainline.slack.sdk")
    sdk_log.setLevel(logging.CRITICAL)
    return sdk_log


def _mapped(method: str, exc: SlackApiError) -> MainlineError:
    status = exc.response.status_code
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = data.get("error", f"HTTP {status}")
    if status == 429 or error == "ratelimited":
        return RetryAfter(f"slack {method}: rate limited", wait=rate_limit_wait(dict(exc.response.headers or {})))
    if status >= 500:
        return TransientError(f"slack {method}: HTTP {status}")
    if error in ("not_authed", "invalid_auth", "account_inactive", "token_revoked", "missing_scope"):
        return AuthError(f"slack {method}: {error}")
    return MainlineError(f"slack {method}: {error}")


class SlackWeb:
    """The few Web API calls Mainline makes, each retried by a tenacity policy."""

    def __init__(self, token: str, base_url: str = SLACK_API_URL, policy=slack_api, timeout: int = 10):
        self._client = WebClient(token=token, base_url=base_url, timeout=timeout, logger=_sdk_logger(),
                                 retry_handlers=[])
        self._policy = policy
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SlackWeb(base_url={self._client.base_url!r})"

    def allows_response_url(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.netloc == "hooks.slack.com":
            return True
        base = urlsplit(self._client.base_url)
        return (parts.scheme, parts.netloc) == (base.scheme, base.netloc) and not parts.username

    def call(self, method: str, **params) -> dict:
        def attempt() -> dict:
            try:
                data = self._client.api_call(method, json=params).data
            except SlackApiError as exc:
                raise _mapped(method, exc) from None
            except OSError as exc:  # connection refused or reset, timeouts
                raise TransientError(f"slack {method}: {type(exc).__name__}") from None
            if isinstance(data, bytes):  # only file downloads answer in bytes, and we call none
                raise MainlineError(f"slack {method}: a binary answer where JSON was expected")
            return data

        return self._policy(attempt)()

    def respond(self, response_url: str, payload: dict) -> None:
        if not self.allows_response_url(response_url):
            # A signed request names where we POST: only Slack's hooks (or the configured
            # Slack host, e.g. the local stand-in), never an address of the requester's choice.
            raise MainlineError(f"refusing a response_url outside Slack: {response_url[:80]!r}")

        def attempt() -> None:
            client = WebhookClient(response_url, timeout=self._timeout, logger=_sdk_logger(), retry_handlers=[])
            try:
                resp = client.send_dict(payload)
            except OSError as exc:
                raise TransientError(f"slack response_url: {type(exc).__name__}") from None
            if resp.status_code == 429:
                raise RetryAfter("slack response_url: rate limited", wait=rate_limit_wait(dict(resp.headers or {})))
            if resp.status_code >= 500:
                raise TransientError(f"slack response_url: HTTP {resp.status_code}")
            if resp.status_code != 200:
                raise MainlineError(f"slack response_url: HTTP {resp.status_code} {resp.body[:200]}")

        self._policy(attempt)()
