"""The doctor's GitHub checks: the token or the App (its JWT, its installation on each repository
and the permissions granted there), and an authenticated `git ls-remote` of each repository."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from collections.abc import Iterator

import requests

from bot.doctor.findings import Finding, fail, ok, skip

AREA = "github"
# What Mainline does with each, and so what the App must be granted (github-app.yml says why).
NEEDED = {"contents": "write", "pull_requests": "write", "statuses": "write", "checks": "write",
          "deployments": "write", "issues": "write", "metadata": "read"}
LEVEL = {"read": 1, "write": 2, "admin": 3}
REPO = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
TIMEOUT = 15


def _get(settings, path: str, auth: str, method: str = "GET") -> requests.Response:
    return requests.request(method, settings.github_api_url.rstrip("/") + path, timeout=TIMEOUT,
                            headers={"Authorization": auth, "Accept": "application/vnd.github+json",
                                     "X-GitHub-Api-Version": "2022-11-28"})


def _message(resp: requests.Response) -> str:
    try:
        return str(resp.json().get("message", ""))[:200]
    except ValueError:
        return resp.text[:200]


def checks(settings, repos: list[str]) -> Iterator[Finding]:
    bad = [r for r in repos if not REPO.match(r)]
    if bad:
        yield fail(AREA, "repositories", f"not OWNER/NAME: {', '.join(bad)}", "name each repository as owner/name")
        repos = [r for r in repos if r not in bad]
    if settings.github_app_id is not None and settings.github_app_private_key is not None:
        yield from _app(settings, repos)
        if settings.github_token is not None:
            yield ok(AREA, "token", "GITHUB_TOKEN is set too: the App is used for check runs and git")
    elif settings.github_token is not None:
        yield from _token(settings, repos)
    else:
        yield fail(AREA, "credentials", "neither GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY(_PATH) nor GITHUB_TOKEN",
                   "run `mainline setup github` (a GitHub App), or set GITHUB_TOKEN")
        return
    if not repos:
        yield skip(AREA, "repositories", "none known yet: pass --repo OWNER/NAME to check one before its first push")


def _token(settings, repos: list[str]) -> Iterator[Finding]:
    auth = f"Bearer {settings.github_token.get_secret_value()}"
    resp = _get(settings, "/user", auth)
    if resp.status_code != 200:
        yield fail(AREA, "token", f"GET /user answered {resp.status_code} {_message(resp)}",
                   "GITHUB_TOKEN is wrong or expired: make a new one with the `repo` scope")
        return
    scopes = resp.headers.get("X-OAuth-Scopes")
    login = resp.json().get("login", "?")
    if scopes is not None and "repo" not in {s.strip() for s in scopes.split(",")}:
        yield fail(AREA, "token", f"{login}'s token lacks the `repo` scope (has: {scopes or 'none'})",
                   "make a classic token with the `repo` scope, or a fine-grained one with contents, "
                   "pull requests, statuses, deployments and issues: write")
    else:
        yield ok(AREA, "token", f"authenticates as {login}" + (f" (scopes: {scopes})" if scopes else ""))
    yield ok(AREA, "check runs", "a token cannot create check runs: Mainline posts commit statuses instead "
                                 "(a GitHub App gets check runs)")
    for repo in repos:
        resp = _get(settings, f"/repos/{repo}", auth)
        if resp.status_code != 200:
            yield fail(AREA, repo, f"GET /repos/{repo} answered {resp.status_code} {_message(resp)}",
                       f"give {login} write access to {repo}")
            continue
        if not resp.json().get("permissions", {}).get("push", False):
            yield fail(AREA, repo, f"{login} cannot push to {repo}", f"give {login} write access to {repo}")
        else:
            yield ok(AREA, repo, f"{login} may push")
        yield _ls_remote(settings, repo, settings.github_token.get_secret_value())


def _app(settings, repos: list[str]) -> Iterator[Finding]:
    from bot.infra.github.auth import app_jwt

    jwt = app_jwt(settings.github_app_id, settings.github_app_private_key.get_secret_value())
    resp = _get(settings, "/app", f"Bearer {jwt}")
    if resp.status_code != 200:
        yield fail(AREA, "app", f"GET /app with the App's JWT answered {resp.status_code} {_message(resp)}",
                   "GITHUB_APP_ID and the private key do not belong together: download a new key "
                   "from the App's settings page")
        return
    slug = resp.json().get("slug", "?")
    yield ok(AREA, "app", f"the JWT authenticates as the App {slug} (id {settings.github_app_id})")
    for repo in repos:
        yield from _installation(settings, repo, slug, jwt)


def _installation(settings, repo: str, slug: str, jwt: str) -> Iterator[Finding]:
    resp = _get(settings, f"/repos/{repo}/installation", f"Bearer {jwt}")
    if resp.status_code != 200:
        yield fail(AREA, repo, f"the App {slug} is not installed on {repo} ({resp.status_code})",
                   f"install it: {settings.github_web_base()}/apps/{slug}/installations/new")
        return
    installation = resp.json()
    granted = installation.get("permissions", {})
    short = [f"{name}: {level} (has {granted.get(name, 'none')})" for name, level in NEEDED.items()
             if LEVEL.get(granted.get(name, ""), 0) < LEVEL[level]]
    if short:
        yield fail(AREA, f"{repo} permissions", "missing " + "; ".join(short),
                   f"grant them in the App's settings, then accept them on the installation "
                   f"({installation.get('html_url', 'the installation page')})")
    else:
        yield ok(AREA, f"{repo} permissions", "installation "
                 f"{installation.get('id')} grants " + ", ".join(f"{k}: {granted[k]}" for k in NEEDED))
    minted = _get(settings, f"/app/installations/{installation['id']}/access_tokens", f"Bearer {jwt}", method="POST")
    if minted.status_code != 201:
        yield fail(AREA, repo, f"no installation token ({minted.status_code} {_message(minted)})",
                   "check the App's private key and that the installation is not suspended")
        return
    yield _ls_remote(settings, repo, minted.json()["token"])
    if LEVEL.get(granted.get("checks", ""), 0) >= LEVEL["write"]:
        yield ok(AREA, f"{repo} check runs", "the installation may write check runs (GitHub has no dry run)")


def _ls_remote(settings, repo: str, token: str) -> Finding:
    """`git ls-remote` as the worker runs it: the credential in the environment, never in argv."""
    url = f"{settings.github_web_base()}/{repo}.git"
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_CONFIG_COUNT="1",
               GIT_CONFIG_KEY_0="http.extraHeader", GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
    try:
        done = subprocess.run(["git", "ls-remote", "--symref", url, "HEAD"], env=env, capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return fail(AREA, f"{repo} git", f"git ls-remote {url}: {type(exc).__name__}",
                    "install git, and let the worker reach GitHub over HTTPS")
    if done.returncode != 0:
        return fail(AREA, f"{repo} git", f"git ls-remote {url} failed: {done.stderr.strip()[-300:]}",
                    "the credential cannot read the repository: check the installation or the token's access")
    head = done.stdout.split("\n", 1)[0].replace("\t", " ")
    return ok(AREA, f"{repo} git", f"authenticated ls-remote: {head}")
