"""The plumbing every part of the GitHub adapter shares: one client per installation, one retry
policy, spaced writes, and who the bot is."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import github
import requests
from github import Auth, GithubException
from tenacity import stop_after_attempt

from bot.domain.github import GitRemote
from bot.errors import AuthError, TransientError
from bot.infra.github.auth import GitHubConfig, InstallationTokenAuth, app_jwt
from bot.infra.github.errors import translate, translate_response
from bot.retry import github_api

log = logging.getLogger("mainline.github")

T = TypeVar("T")



class WriteSpacer:
    """Keeps content-creating writes at least `interval` seconds apart (GitHub's advice against
    secondary rate limits)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            if self._last is not None:
                remaining = self._last + self.interval - self._clock()
                if remaining > 0:
                    self._sleep(remaining)
            self._last = self._clock()


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value



class GitHubBase:
    """What every part of the adapter stands on (see GitHubAdapter)."""

    def __init__(self, config: GitHubConfig, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
        if not config.token and not (config.app_id and config.private_key):
            raise AuthError("GitHub needs GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY")
        self._config = config
        self._sleep = sleep
        self._clock = clock
        self._spacer = WriteSpacer(config.write_interval, sleep=sleep)
        self._clients: dict[int | None, tuple[github.Github, Auth.Auth]] = {}
        self._installations: dict[str, int] = {}
        self._lock = threading.Lock()
        self._login: str | None = None
        # Only GitHub Apps may create check runs. With a token alone, a refusal switches our own
        # results (mainline/config, the gates) to commit statuses for the life of the process.
        self.checks_as_statuses = False
        self._say_how_results_are_posted()

    @property
    def has_app(self) -> bool:
        return bool(self._config.app_id and self._config.private_key)

    def _say_how_results_are_posted(self) -> None:
        if not self.has_app:
            log.warning("github: GITHUB_TOKEN without a GitHub App: GitHub lets only Apps create check runs, so "
                        "Mainline's results (mainline/config, the gates) fall back to commit statuses as soon as "
                        "GitHub refuses a check run for this token (a personal token always is). Set GITHUB_APP_ID "
                        "and GITHUB_APP_PRIVATE_KEY_PATH for check runs")
        elif self._config.token:
            log.info("github: check runs and git go through the GitHub App (id %s); the rest through GITHUB_TOKEN",
                     self._config.app_id)
        else:
            log.info("github: acting as the GitHub App (id %s), with its installations' tokens", self._config.app_id)

    # -- plumbing ---------------------------------------------------------------------------

    def _client(self, repo: str, *, as_app: bool = False) -> tuple[github.Github, Auth.Auth]:
        """The client for `repo`: the token's, or (App only, or `as_app` with an App configured)
        the client of the repository's installation."""
        token = self._config.token
        if token and not (as_app and self.has_app):
            return self._cached_client(None, lambda: Auth.Token(token))
        installation = self._config.installation_id
        if installation is None:
            installation = self._installation_for(repo)
        return self._cached_client(installation,
                                   lambda: InstallationTokenAuth(self._config, installation, self._clock))

    def _cached_client(self, key: int | None, make_auth: Callable[[], Auth.Auth]) -> tuple[github.Github, Auth.Auth]:
        """One client per installation (or for the token, key None), made on first use."""
        with self._lock:
            if key not in self._clients:
                auth = make_auth()
                client = github.Github(
                    auth=auth,
                    base_url=self._config.base_url.rstrip("/"),
                    timeout=self._config.timeout,
                    retry=None,  # ours is the one policy
                    seconds_between_requests=None,
                    seconds_between_writes=None,  # WriteSpacer does it, and only for writes we make
                    lazy=True,  # no GET behind our back to complete an object we only write through
                )
                self._clients[key] = (client, auth)
            return self._clients[key]

    def _installation_for(self, repo: str) -> int:
        if repo not in self._installations:
            def lookup() -> int:
                url = f"{self._config.base_url.rstrip('/')}/repos/{repo}/installation"
                bearer = app_jwt(self._config.app_id or "", self._config.private_key or "", self._clock())
                try:
                    response = requests.get(url, headers={"Authorization": f"Bearer {bearer}"},
                                            timeout=self._config.timeout)
                except requests.RequestException as exc:
                    raise TransientError(f"installation of {repo}: {exc}") from exc
                if response.status_code != 200:
                    raise translate_response(response, f"installation of {repo}")
                return int(response.json()["id"])

            self._installations[repo] = self._retrying(lookup)
        return self._installations[repo]

    def _retrying(self, attempt: Callable[[], T]) -> T:
        policy = github_api(attempt).retry_with(sleep=self._sleep, stop=stop_after_attempt(self._config.attempts))
        return policy()

    def _call(self, what: str, fn: Callable[[], T], *, write: bool = False) -> T:
        """Run `fn` under the GitHub retry policy. `fn` must finish its reads (pagination,
        lazy completion) and return our own types, so a retry redoes the whole thing."""

        def attempt() -> T:
            if write:
                self._spacer.wait()
            try:
                return fn()
            except GithubException as exc:
                raise translate(exc, what) from exc
            except requests.RequestException as exc:
                raise TransientError(f"{what}: {exc}") from exc

        return self._retrying(attempt)

    def _repo(self, repo: str, *, as_app: bool = False):
        client, _ = self._client(repo, as_app=as_app)
        return client.get_repo(repo)

    def _post_json(self, repo: str, path: str, payload: dict) -> dict:
        client, _ = self._client(repo)
        _, data = client.requester.requestJsonAndCheck("POST", f"{self._repo(repo).url}{path}", input=payload)
        return data

    # -- who the bot is ---------------------------------------------------------------------

    def bot_login(self) -> str:
        """The login GitHub shows on what the bot writes, learnt once: the token's user
        (`GET /user`), or for an App its bot user `<slug>[bot]` (`GET /app`, with the JWT)."""
        if self._login is None:
            login = self._retrying(self._app_login if not self._config.token else self._token_login)
            with self._lock:
                self._login = login
            log.info("github: acting as %s", login)
        return self._login

    def _token_login(self) -> str:
        return self._get_json("/user", f"token {self._config.token}", "the token's user")["login"]

    def _app_login(self) -> str:
        bearer = app_jwt(self._config.app_id or "", self._config.private_key or "", self._clock())
        return f"{self._get_json('/app', f'Bearer {bearer}', 'the app')['slug']}[bot]"

    def _get_json(self, path: str, authorization: str, what: str) -> dict:
        try:
            response = requests.get(f"{self._config.base_url.rstrip('/')}{path}", timeout=self._config.timeout,
                                    headers={"Authorization": authorization, "Accept": "application/vnd.github+json"})
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {exc}") from exc
        if response.status_code != 200:
            raise translate_response(response, what)
        return response.json()

    def _is_own(self, login: str | None, body: str | None, marker: str) -> bool:
        """A comment is ours to edit only if the bot wrote it and it starts with the marker;
        anyone can paste a marker into a comment of their own."""
        return login == self.bot_login() and (body or "").startswith(marker)


    def git_token(self, repo: str) -> str:
        """What git presents for `repo`: with an App (alone or beside GITHUB_TOKEN) the installation
        token of the repository's installation, renewed before it expires exactly as the API's
        is; GITHUB_TOKEN otherwise."""
        _, auth = self._client(repo, as_app=True)
        return self._call(f"token for {repo}", lambda: auth.token)

    def git_remote(self, repo: str) -> GitRemote:
        return GitRemote(f"{self._config.git_base}/{repo}.git", "x-access-token", self.git_token(repo))
