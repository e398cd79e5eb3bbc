"""Signing in with GitHub: the OAuth web flow (`/login`, `/login/callback`, `/logout`).

GitHub's documented flow: send the person to `{web}/login/oauth/authorize` with our client id,
a random `state` and the callback; GitHub sends them back with a `code` and the same `state`;
we trade the code for a user token at `{web}/login/oauth/access_token` and ask `GET /user` who
it is. The user token is dropped at once: the session needs only the login."""

from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import urlencode, urlsplit

import requests
from flask import Blueprint, Response, make_response, redirect, render_template, request

from bot.auth import SESSION_COOKIE, SESSION_TTL, WebSessions
from bot.errors import MainlineError
from bot.settings import Settings

log = logging.getLogger("mainline.auth")

STATE_COOKIE = "mainline_oauth_state"
STATE_TTL_SECONDS = 600
GITHUB_TIMEOUT = 10


def configured(settings: Settings) -> bool:
    return bool(settings.github_oauth_client_id and settings.github_oauth_client_secret)


def safe_next(target: str | None) -> str:
    """Where to land after signing in: a path on this site, never another host."""
    if not target or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target):
        return "/"  # browsers drop tabs and newlines: `/\t/evil` would become `//evil`
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//") \
            or "\\" in target:
        return "/"
    return target[:500]


def page(status: int, title: str, message: str, link: tuple[str, str] | None = None) -> Response:
    response = make_response(render_template("signin.html", title=title, message=message, link=link), status)
    response.headers["Cache-Control"] = "no-store"
    return response


class GitHubSignIn:
    """The HTTP calls of the flow, against the configured GitHub (or the local stand-in)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.web = settings.github_web_base()
        self.api = settings.github_api_url.rstrip("/")

    def authorize_url(self, state: str) -> str:
        query = urlencode({"client_id": self.settings.github_oauth_client_id, "state": state,
                           "redirect_uri": self.callback_url(), "allow_signup": "false"})
        return f"{self.web}/login/oauth/authorize?{query}"

    def callback_url(self) -> str:
        return self.settings.public_url.rstrip("/") + "/login/callback"

    def login_for(self, code: str) -> str:
        """The GitHub login that `code` was issued to; raises SignInError with a reason."""
        secret = self.settings.github_oauth_client_secret
        answer = self._call("post", f"{self.web}/login/oauth/access_token", headers={"Accept": "application/json"},
                            data={"client_id": self.settings.github_oauth_client_id,
                                  "client_secret": secret.get_secret_value() if secret else "",
                                  "code": code, "redirect_uri": self.callback_url()})
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            # GitHub answers 200 with {"error": "bad_verification_code", ...} for a used or wrong code.
            raise SignInError(400, f"GitHub did not accept the sign-in code ({answer.get('error') or 'no token'}); "
                                   "sign in again")
        user = self._call("get", f"{self.api}/user", headers={"Authorization": f"Bearer {token}",
                                                              "Accept": "application/vnd.github+json"})
        login = user.get("login")
        if not isinstance(login, str) or not login:
            raise SignInError(502, "GitHub did not say who signed in")
        return login

    def _call(self, method: str, url: str, **kwargs) -> dict:
        try:
            response = requests.request(method, url, timeout=GITHUB_TIMEOUT, allow_redirects=False, **kwargs)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("sign-in: %s %s failed: %s", method.upper(), url, exc)
            raise SignInError(502, "GitHub did not answer the sign-in; try again in a moment") from None
        if response.status_code >= 400 or not isinstance(body, dict):
            log.warning("sign-in: %s %s answered %s", method.upper(), url, response.status_code)
            raise SignInError(502 if response.status_code >= 500 else 400,
                              f"GitHub refused the sign-in ({response.status_code}); sign in again")
        return body


class SignInError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def may_read(login: str, settings: Settings, store, github) -> bool:
    """A GitHub account reads the board when it is an admin or may read one of the repositories
    Mainline deploys: any stranger with a GitHub account must not."""
    if f"github:{login}" in settings.admin_ids():
        return True
    if github is None:
        return False
    for repo in sorted({s.repo for s in store.services()}):
        try:
            if github.permission(repo, login).permission != "none":
                return True
        except MainlineError as exc:
            log.warning("sign-in: could not read %s's permission on %s: %s", login, repo, exc)
    return False


def blueprint(settings: Settings, store, github=None) -> Blueprint:
    bp = Blueprint("signin", __name__)
    sessions = WebSessions(store)
    signin = GitHubSignIn(settings)  # not `github`: that is the host may_read asks about permissions
    secure = settings.public_url.startswith("https://")

    @bp.get("/login")
    def login():
        if not configured(settings):
            return page(404, "Sign-in is not set up",
                        "GitHub sign-in needs GITHUB_OAUTH_CLIENT_ID and GITHUB_OAUTH_CLIENT_SECRET. "
                        "Scripts can read with an API token: mainline tokens create NAME --scope read.")
        state = secrets.token_urlsafe(24)
        response = redirect(signin.authorize_url(state), 302)
        # The state is bound to this browser: a callback carrying someone else's state is refused.
        response.set_cookie(STATE_COOKIE, f"{state}|{safe_next(request.args.get('next'))}",
                            max_age=STATE_TTL_SECONDS, httponly=True, samesite="Lax", secure=secure, path="/login")
        return response

    @bp.get("/login/callback")
    def callback():
        expected, _, next_path = (request.cookies.get(STATE_COOKIE) or "").partition("|")
        state, code = request.args.get("state", ""), request.args.get("code", "")
        error = request.args.get("error")
        if error:
            return _refused(400, f"GitHub did not sign you in: {error[:100]}")
        if not expected or not state or not hmac.compare_digest(expected.encode(), state.encode()):
            return _refused(400, "The sign-in state does not match this browser's (expired, or not started "
                                 "here); sign in again")
        if not code:
            return _refused(400, "GitHub's answer carried no code; sign in again")
        try:
            login = signin.login_for(code[:200])
        except SignInError as exc:
            return _refused(exc.status, exc.message)
        if not may_read(login, settings, store, github):
            log.info("sign-in: github:%s may read none of the deployed repositories; refused", login)
            return _refused(403, f"{login} is not a collaborator of any repository Mainline deploys; ask an "
                                 "admin (MAINLINE_ADMINS) or a repository admin for access")
        log.info("sign-in: github:%s signed in", login)
        response = redirect(safe_next(next_path), 302)
        response.set_cookie(SESSION_COOKIE, sessions.open(login), max_age=int(SESSION_TTL.total_seconds()),
                            httponly=True, samesite="Lax", secure=secure, path="/")
        response.delete_cookie(STATE_COOKIE, path="/login")
        return response

    @bp.get("/logout")
    def logout():
        sessions.close(request.cookies.get(SESSION_COOKIE, ""))
        response = page(200, "Signed out", "You are signed out of Mainline.", ("/login", "Sign in with GitHub"))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=secure)
        return response

    def _refused(status: int, message: str) -> Response:
        response = page(status, "Not signed in", message, ("/login", "Sign in with GitHub"))
        response.delete_cookie(STATE_COOKIE, path="/login")
        return response

    return bp
