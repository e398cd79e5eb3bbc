"""How Mainline proves who it is to GitHub: a token, or a GitHub App's JWT exchanged for
installation tokens that are renewed before they expire."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import jwt
import requests
from github import Auth

from bot.errors import TransientError
from bot.infra.github.errors import translate_response

log = logging.getLogger("mainline.github")

DEFAULT_API_URL = "https://api.github.com"
# Installation tokens live an hour; take a new one well before, so a long call never
# starts with a token that dies mid-way.
TOKEN_REFRESH_MARGIN = 300.0
JWT_LIFETIME = 540  # GitHub refuses an exp more than 10 minutes ahead; keep clock-skew room.
JWT_BACKDATE = 60  # iat in the past, against clock drift (GitHub's own advice).


@dataclass(frozen=True)
class GitHubConfig:
    """How to reach GitHub. Either `token`, or `app_id` + `private_key` (+ `installation_id`,
    else it is looked up per repository)."""

    base_url: str = DEFAULT_API_URL
    token: str | None = None
    app_id: int | str | None = None  # the JWT's `iss`, sent as a string either way
    private_key: str | None = None
    installation_id: int | None = None
    git_url: str | None = None  # where /OWNER/REPO.git is served; derived from base_url if None
    write_interval: float = 1.0  # seconds between content-creating writes
    attempts: int = 5
    timeout: int = 15

    @property
    def git_base(self) -> str:
        if self.git_url:
            return self.git_url.rstrip("/")
        if self.base_url.rstrip("/") == DEFAULT_API_URL:
            return "https://github.com"
        # The local stand-in and GitHub Enterprise serve git beside the API root.
        return re.sub(r"/api/v3/?$", "", self.base_url.rstrip("/"))


def app_jwt(app_id: int | str, private_key: str, now: float | None = None) -> str:
    """The short-lived RS256 JWT a GitHub App signs to ask for installation tokens."""
    issued = int(now if now is not None else time.time())
    claims = {"iat": issued - JWT_BACKDATE, "exp": issued + JWT_LIFETIME, "iss": str(app_id)}
    return jwt.encode(claims, private_key, algorithm="RS256")


class InstallationTokenAuth(Auth.Auth):
    """A GitHub App installation token, exchanged from the app JWT and renewed before expiry."""

    def __init__(self, config: GitHubConfig, installation_id: int, clock: Callable[[], float] = time.time):
        self._config = config
        self._installation_id = installation_id
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - TOKEN_REFRESH_MARGIN:
                self._token, self._expires_at = self._exchange()
            return self._token

    def _exchange(self) -> tuple[str, float]:
        url = f"{self._config.base_url.rstrip('/')}/app/installations/{self._installation_id}/access_tokens"
        bearer = app_jwt(self._config.app_id or "", self._config.private_key or "", self._clock())
        what = f"installation token for {self._installation_id}"
        try:
            response = requests.post(
                url,
                headers={"Authorization": f"Bearer {bearer}", "Accept": "application/vnd.github+json"},
                timeout=self._config.timeout,
            )
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {exc}") from exc
        if response.status_code != 201:
            raise translate_response(response, what)
        body = response.json()
        expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        self.exchanges += 1
        log.info("github: new installation token for installation %s, valid until %s", self._installation_id,
                 body["expires_at"])
        return body["token"], expires.timestamp()
