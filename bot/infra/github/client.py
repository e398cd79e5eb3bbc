"""The PyGithub adapter behind GitHost.

Every call goes through one tenacity policy (bot.retry's `github_api`): PyGithub's own retry is
off so there is exactly one place that decides to wait. PyGithub errors become ours, and no
PyGithub object leaves this module: callers get the frozen dataclasses of github_port.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import github
import jwt
import requests
from github import Auth, GithubException
from tenacity import stop_after_attempt

from bot.domain.github import (
    CheckRun,
    CheckRunReport,
    CiContext,
    Comment,
    CommitStatus,
    Comparison,
    Deployment,
    DeploymentStatus,
    DeploymentStatusReport,
    FileContent,
    GitRemote,
    MergeResult,
    NewPull,
    Permission,
    PullRequest,
)
from bot.errors import AuthError, MainlineError, NotFoundError, TransientError
from bot.retry import RetryAfter, github_api, rate_limit_wait

log = logging.getLogger("mainline.github")

T = TypeVar("T")

DEFAULT_API_URL = "https://api.github.com"
# Our own gate reports are check runs too; they are not CI and must not gate themselves.
OWN_CHECK_PREFIX = "mainline/"
# GitHub asks for at least a minute when a secondary limit names no Retry-After.
SECONDARY_LIMIT_WAIT = 60.0
# Installation tokens live an hour; take a new one well before, so a long call never
# starts with a token that dies mid-way.
TOKEN_REFRESH_MARGIN = 300.0
JWT_LIFETIME = 540  # GitHub refuses an exp more than 10 minutes ahead; keep clock-skew room.
JWT_BACKDATE = 60  # iat in the past, against clock drift (GitHub's own advice).

MERGE_SUBJECT = re.compile(r"^Merge pull request #(\d+)\b")
SQUASH_SUBJECT = re.compile(r"\(#(\d+)\)\s*$")


class GitHubRequestError(MainlineError):
    """GitHub understood the request and refused it (422 validation, 409 conflict, 405 not
    mergeable …). Not worth retrying as is."""

    def __init__(self, status: int, message: str, errors: list | None = None):
        self.status = status
        self.message = message
        self.errors = errors or []
        super().__init__(f"{status} {message}")


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


def _check_state(status: str, conclusion: str | None) -> str:
    if status != "completed":
        return "pending"
    if conclusion in ("success", "neutral", "skipped"):
        return "success"
    return "failure"


class GitHubAdapter:
    """GitHost over PyGithub."""

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

    # -- plumbing ---------------------------------------------------------------------------

    def _client(self, repo: str) -> tuple[github.Github, Auth.Auth]:
        token = self._config.token
        if token:
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

    def _repo(self, repo: str):
        client, _ = self._client(repo)
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

    # -- CI signals -------------------------------------------------------------------------

    def ci_contexts(self, repo: str, sha: str) -> list[CiContext]:
        def read() -> list[CiContext]:
            commit = self._repo(repo).get_commit(sha)
            out = [CiContext(s.context, s.state, _utc(s.updated_at), "status")
                   for s in commit.get_combined_status().statuses]
            newest: dict[str, Any] = {}
            for run in commit.get_check_runs():
                if run.name.startswith(OWN_CHECK_PREFIX):
                    continue
                if run.name not in newest or run.id > newest[run.name].id:
                    newest[run.name] = run
            for run in newest.values():
                out.append(CiContext(run.name, _check_state(run.status, run.conclusion),
                                     _utc(run.completed_at or run.started_at), "check_run"))
            return out

        return self._call(f"CI contexts of {repo}@{sha[:12]}", read)

    def create_status(self, repo: str, sha: str, status: CommitStatus) -> CommitStatus:
        def write() -> CommitStatus:
            made = self._repo(repo).get_commit(sha).create_status(
                status.state, target_url=status.target_url or github.GithubObject.NotSet,
                description=status.description, context=status.context)
            return CommitStatus(made.context or status.context, made.state, made.description or "",
                                made.target_url or "", _utc(made.updated_at))

        return self._call(f"status {status.context} on {repo}@{sha[:12]}", write, write=True)

    # -- check runs -------------------------------------------------------------------------

    @staticmethod
    def _check_run(run) -> CheckRun:
        output = run.output
        return CheckRun(run.id, run.name, run.head_sha, run.status, run.conclusion,
                        (output.title if output else "") or "", (output.summary if output else "") or "",
                        run.html_url or "", _utc(run.completed_at))

    @staticmethod
    def _check_run_fields(report: CheckRunReport) -> dict:
        fields: dict[str, Any] = {
            "status": report.status,
            "output": {"title": report.title or report.name, "summary": report.summary or report.title or report.name},
        }
        if report.status == "completed" and report.conclusion:
            fields["conclusion"] = report.conclusion
        if report.details_url:
            fields["details_url"] = report.details_url
        return fields

    def create_check_run(self, repo: str, report: CheckRunReport) -> CheckRun:
        def write() -> CheckRun:
            made = self._repo(repo).create_check_run(report.name, report.head_sha, **self._check_run_fields(report))
            return self._check_run(made)

        return self._call(f"check run {report.name} on {repo}@{report.head_sha[:12]}", write, write=True)

    def update_check_run(self, repo: str, check_run_id: int, report: CheckRunReport) -> CheckRun:
        def write() -> CheckRun:
            run = self._repo(repo).get_check_run(check_run_id)
            run.edit(**self._check_run_fields(report))
            return self._check_run(run)

        return self._call(f"check run {check_run_id} of {repo}", write, write=True)

    def upsert_check_run(self, repo: str, report: CheckRunReport) -> CheckRun:
        def find() -> int | None:
            runs = list(self._repo(repo).get_commit(report.head_sha).get_check_runs(check_name=report.name))
            return max((r.id for r in runs if r.name == report.name), default=None)

        existing = self._call(f"check runs {report.name} on {repo}@{report.head_sha[:12]}", find)
        if existing is None:
            return self.create_check_run(repo, report)
        try:
            return self.update_check_run(repo, existing, report)
        except GitHubRequestError as exc:
            # A completed run may refuse to reopen; a fresh run then carries the new verdict.
            log.info("github: check run %s not editable (%s); creating a new one", existing, exc)
            return self.create_check_run(repo, report)

    # -- deployments ------------------------------------------------------------------------

    @staticmethod
    def _deployment(d) -> Deployment:
        return Deployment(d.id, d.sha, d.ref, d.environment, d.description or "", _utc(d.created_at),
                          d.creator.login if d.creator else "")

    def find_deployments(self, repo: str, sha: str, environment: str) -> list[Deployment]:
        def read() -> list[Deployment]:
            found = self._repo(repo).get_deployments(sha=sha, environment=environment)
            return [self._deployment(d) for d in found]

        return self._call(f"deployments of {repo}@{sha[:12]} to {environment}", read)

    def create_deployment(self, repo: str, sha: str, environment: str, description: str = "") -> Deployment:
        def write() -> Deployment:
            made = self._repo(repo).create_deployment(
                ref=sha, environment=environment, auto_merge=False, required_contexts=[],
                description=description, production_environment=environment == "production")
            return self._deployment(made)

        return self._call(f"deployment of {repo}@{sha[:12]} to {environment}", write, write=True)

    @staticmethod
    def _deployment_status_from(data: dict) -> DeploymentStatus:
        created = data.get("created_at")
        return DeploymentStatus(
            int(data["id"]), data["state"], data.get("description") or "", data.get("environment") or "",
            data.get("environment_url") or "", data.get("log_url") or data.get("target_url") or "",
            datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None)

    def deployment_statuses(self, repo: str, deployment_id: int) -> list[DeploymentStatus]:
        def read() -> list[DeploymentStatus]:
            statuses = self._repo(repo).get_deployment(deployment_id).get_statuses()
            return [DeploymentStatus(s.id, s.state, s.description or "", s.environment or "",
                                     s.environment_url or "", s.log_url or s.target_url or "",
                                     _utc(s.created_at)) for s in statuses]

        return self._call(f"statuses of deployment {deployment_id} of {repo}", read)

    def create_deployment_status(self, repo: str, deployment_id: int,
                                 report: DeploymentStatusReport) -> DeploymentStatus:
        # PyGithub's create_status knows no log_url, so this one goes through its requester.
        payload: dict[str, Any] = {"state": report.state, "description": report.description[:140]}
        if report.environment_url:
            payload["environment_url"] = report.environment_url
        if report.log_url:
            payload["log_url"] = report.log_url

        def write() -> DeploymentStatus:
            answer = self._post_json(repo, f"/deployments/{deployment_id}/statuses", payload)
            return self._deployment_status_from(answer)

        return self._call(f"status {report.state} of deployment {deployment_id} of {repo}", write, write=True)

    # -- comments ---------------------------------------------------------------------------

    @staticmethod
    def _comment(c) -> Comment:
        return Comment(c.id, c.body or "", c.user.login if c.user else "", c.html_url or "")

    def comments(self, repo: str, number: int) -> list[Comment]:
        def read() -> list[Comment]:
            return [self._comment(c) for c in self._repo(repo).get_issue(number).get_comments()]

        return self._call(f"comments of {repo}#{number}", read)

    def create_comment(self, repo: str, number: int, body: str) -> Comment:
        def write() -> Comment:
            return self._comment(self._repo(repo).get_issue(number).create_comment(body))

        return self._call(f"comment on {repo}#{number}", write, write=True)

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> Comment:
        if not body.startswith(marker):
            body = f"{marker}\n{body.replace(marker, '')}"
        self.bot_login()  # learnt outside the unit below, so its own retries stay its own

        # Find and write in one retried unit: a retry after a lost response finds the comment
        # the first attempt made instead of adding a second.
        def write() -> Comment:
            issue = self._repo(repo).get_issue(number)
            for existing in issue.get_comments():
                if self._is_own(existing.user.login if existing.user else None, existing.body, marker):
                    if existing.body != body:
                        self._spacer.wait()
                        existing.edit(body)
                    return self._comment(existing)
            self._spacer.wait()
            return self._comment(issue.create_comment(body))

        return self._call(f"comment {marker} on {repo}#{number}", write)

    def add_reaction(self, repo: str, comment_id: int, content: str) -> None:
        def write() -> None:
            self._post_json(repo, f"/issues/comments/{comment_id}/reactions", {"content": content})

        self._call(f"reaction {content} on comment {comment_id} of {repo}", write, write=True)

    # -- pull requests ----------------------------------------------------------------------

    @staticmethod
    def _pull(pr) -> PullRequest:
        # `merged` is absent from list payloads; merged_at is in both and says the same.
        return PullRequest(
            number=pr.number, title=pr.title or "", user_login=pr.user.login if pr.user else "",
            body=pr.body or "", merged=pr.merged_at is not None, head_sha=pr.head.sha,
            html_url=pr.html_url or "", state=pr.state, draft=bool(pr.draft), head_ref=pr.head.ref,
            base_ref=pr.base.ref, merge_commit_sha=pr.merge_commit_sha,
            head_repo=pr.head.repo.full_name if pr.head.repo else "")

    def get_pull(self, repo: str, number: int) -> PullRequest:
        return self._call(f"pull {repo}#{number}", lambda: self._pull(self._repo(repo).get_pull(number)))

    def find_pulls(self, repo: str, head_branch: str, state: str = "all") -> list[PullRequest]:
        owner = repo.split("/")[0]

        def read() -> list[PullRequest]:
            pulls = self._repo(repo).get_pulls(state=state, head=f"{owner}:{head_branch}")
            # Some servers ignore `head`; filter so the answer is right either way.
            return [self._pull(p) for p in pulls if p.head.ref == head_branch]

        return self._call(f"pulls of {repo} from {head_branch}", read)

    def pulls_for_commit(self, repo: str, sha: str) -> list[PullRequest]:
        # A merge or squash commit names its PR in the subject; trust it once the PR agrees it
        # made this commit. Only other commits (rebase merges, direct pushes) need the index.
        subject = (self.commit_message(repo, sha).splitlines() or [""])[0]
        match = MERGE_SUBJECT.search(subject) or SQUASH_SUBJECT.search(subject)
        if match:
            try:
                named = self.get_pull(repo, int(match.group(1)))
            except NotFoundError:
                named = None
            if named is not None and named.merge_commit_sha == sha:
                return [named]

        def read() -> list[PullRequest]:
            return [self._pull(p) for p in self._repo(repo).get_commit(sha).get_pulls()]

        try:
            return self._call(f"pulls of {repo}@{sha[:12]}", read)
        except NotFoundError:
            return []

    def create_pull(self, repo: str, pull: NewPull) -> PullRequest:
        def write() -> PullRequest:
            made = self._repo(repo).create_pull(base=pull.base, head=pull.head, title=pull.title, body=pull.body,
                                                draft=pull.draft)
            return self._pull(made)

        return self._call(f"pull {pull.head} -> {pull.base} in {repo}", write, write=True)

    def close_pull(self, repo: str, number: int) -> PullRequest:
        def write() -> PullRequest:
            pull = self._repo(repo).get_pull(number)
            pull.edit(state="closed")
            return self._pull(pull)

        return self._call(f"close {repo}#{number}", write, write=True)

    def merge_pull(self, repo: str, number: int, title: str | None = None, sha: str | None = None) -> MergeResult:
        not_set = github.GithubObject.NotSet

        def write() -> MergeResult:
            result = self._repo(repo).get_pull(number).merge(
                commit_title=title if title else not_set, merge_method="merge", sha=sha if sha else not_set)
            return MergeResult(bool(result.merged), result.sha, result.message or "")

        return self._call(f"merge of {repo}#{number}", write, write=True)

    def permission(self, repo: str, login: str) -> Permission:
        def read() -> Permission:
            return Permission(login, self._repo(repo).get_collaborator_permission(login))

        try:
            return self._call(f"permission of {login} on {repo}", read)
        except NotFoundError:
            return Permission(login, "none")

    # -- contents and history ---------------------------------------------------------------

    def file_contents(self, repo: str, path: str, ref: str) -> FileContent:
        def read() -> FileContent:
            found = self._repo(repo).get_contents(path, ref=ref)
            if isinstance(found, list):
                raise NotFoundError(f"{path} at {ref} in {repo} is a directory")
            return FileContent(found.path, found.sha, found.decoded_content)

        return self._call(f"{path} at {ref} in {repo}", read)

    def compare(self, repo: str, base: str, head: str) -> Comparison:
        def read() -> Comparison:
            c = self._repo(repo).compare(base, head)
            return Comparison(c.status, c.ahead_by, c.behind_by, tuple(commit.sha for commit in c.commits))

        return self._call(f"compare {base}...{head} in {repo}", read)

    def commit_message(self, repo: str, sha: str) -> str:
        return self._call(f"commit {repo}@{sha[:12]}", lambda: self._repo(repo).get_commit(sha).commit.message)

    def git_remote(self, repo: str) -> GitRemote:
        _, auth = self._client(repo)
        token = self._call(f"token for {repo}", lambda: auth.token)
        return GitRemote(f"{self._config.git_base}/{repo}.git", "x-access-token", token)
