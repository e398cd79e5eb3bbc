"""GitHub's OAuth web flow on the stand-in, as GitHub documents it ("Authorizing OAuth apps"):

- `GET /login/oauth/authorize?client_id&redirect_uri&state` shows a page where the person says
  who they are (the stand-in has no passwords), or, given `login=NAME`, signs NAME in at once;
  either way it redirects to `redirect_uri?code=…&state=…`;
- `POST /login/oauth/access_token` trades a code (once, within ten minutes) for a user token,
  answering JSON when asked with `Accept: application/json`, else a form, as GitHub does;
- `GET /user` with that token says who it belongs to.

These live on GitHub's web host, not the REST API, so they sit in front of the REST app and
outside its OpenAPI checks. `/user` with any other token falls through to the REST app."""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from werkzeug.wrappers import Request, Response

from .github_state import user_id

CODE_TTL = 600  # GitHub's codes expire after ten minutes
DOCS = "https://docs.github.com/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps"


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str
    callback_url: str  # a redirect_uri must start with it, as GitHub requires


@dataclass
class OAuthStandIn:
    """Registered OAuth apps, pending codes and issued user tokens."""

    apps: dict[str, OAuthApp] = field(default_factory=dict)
    codes: dict[str, tuple[str, str, str, float]] = field(default_factory=dict)  # code -> app, login, uri, at
    tokens: dict[str, str] = field(default_factory=dict)  # user token -> login
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register_app(self, client_id: str, client_secret: str, callback_url: str) -> None:
        self.apps[client_id] = OAuthApp(client_id, client_secret, callback_url)

    def issue_code(self, client_id: str, login: str, redirect_uri: str) -> str:
        code = secrets.token_hex(10)
        with self.lock:
            self.codes[code] = (client_id, login, redirect_uri, time.time())
        return code

    def redeem(self, client_id: str, client_secret: str, code: str, redirect_uri: str | None) -> dict:
        app = self.apps.get(client_id)
        if app is None or not secrets.compare_digest(app.client_secret, client_secret):
            return _oauth_error("incorrect_client_credentials",
                                "The client_id and/or client_secret passed are incorrect.")
        with self.lock:
            issued = self.codes.pop(code, None)  # a code is good once
        if issued is None or issued[0] != client_id or time.time() - issued[3] > CODE_TTL:
            return _oauth_error("bad_verification_code", "The code passed is incorrect or expired.")
        if redirect_uri and redirect_uri != issued[2]:
            return _oauth_error("redirect_uri_mismatch",
                                "The redirect_uri MUST match the registered callback URL for this application.")
        token = "gho_" + secrets.token_urlsafe(27)
        with self.lock:
            self.tokens[token] = issued[1]
        return {"access_token": token, "token_type": "bearer", "scope": ""}


def _oauth_error(error: str, description: str) -> dict:
    return {"error": error, "error_description": description, "error_uri": DOCS}


def with_oauth(rest_app, oauth: OAuthStandIn, base_url):
    """The stand-in's WSGI app: the OAuth pages first, everything else to `rest_app`.
    `base_url()` gives the stand-in's own URL (known once it listens)."""

    def app(environ, start_response):
        request = Request(environ)
        if request.path == "/login/oauth/authorize" and request.method == "GET":
            return _authorize(request, oauth)(environ, start_response)
        if request.path == "/login/oauth/access_token" and request.method == "POST":
            return _access_token(request, oauth)(environ, start_response)
        if request.path.rstrip("/") == "/user" and request.method == "GET":
            login = oauth.tokens.get(_token(request))
            if login is not None:
                return _json(_user(login, base_url()))(environ, start_response)
        return rest_app(environ, start_response)

    return app


def _authorize(request: Request, oauth: OAuthStandIn) -> Response:
    client_id, uri, state = (request.args.get(k, "") for k in ("client_id", "redirect_uri", "state"))
    app = oauth.apps.get(client_id)
    if app is None:
        return _page(404, "<h1>404</h1><p>This OAuth application is not known to this GitHub.</p>")
    uri = uri or app.callback_url
    if not uri.startswith(app.callback_url):
        return _page(400, "<h1>Redirect URI mismatch</h1><p>The redirect_uri is not associated with this "
                          "application.</p>")
    login = request.args.get("login", "").strip()
    if not login:
        return _page(200, _sign_in_form(request.args))
    code = oauth.issue_code(client_id, login[:39], uri)
    query = urlencode({"code": code, "state": state}) if state else urlencode({"code": code})
    return Response(status=302, headers={"Location": f"{uri}{'&' if '?' in uri else '?'}{query}"})


def _sign_in_form(args) -> str:
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in args.items() if k != "login")
    return ("<h1>Authorize Mainline</h1><p>The local GitHub has no passwords: say who you are.</p>"
            '<form method="get" action="/login/oauth/authorize">' + hidden +
            '<label>Username <input name="login" value="octocat" autocomplete="username"></label> '
            '<button type="submit">Authorize</button></form>')


def _access_token(request: Request, oauth: OAuthStandIn) -> Response:
    fields = dict(parse_qsl(request.get_data(as_text=True))) if request.mimetype != "application/json" \
        else (request.get_json(silent=True) or {})
    fields = {**request.args.to_dict(), **{k: str(v) for k, v in fields.items()}}
    answer = oauth.redeem(fields.get("client_id", ""), fields.get("client_secret", ""), fields.get("code", ""),
                          fields.get("redirect_uri"))
    # GitHub answers 200 even for a bad code; the error is in the body.
    if "application/json" in request.headers.get("Accept", ""):
        return _json(answer)
    return Response(urlencode(answer), status=200, mimetype="application/x-www-form-urlencoded")


def _token(request: Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else ""


def _user(login: str, base: str) -> dict:
    """The public-user shape of GET /user, enough for a sign-in."""
    return {"login": login, "id": user_id(login), "node_id": f"U_{user_id(login)}", "type": "User",
            "site_admin": False, "name": login, "avatar_url": f"{base}/avatars/{login}",
            "html_url": f"{base}/{login}", "url": f"{base}/users/{login}"}


def _json(payload: dict) -> Response:
    return Response(json.dumps(payload), status=200, mimetype="application/json")


def _page(status: int, body: str) -> Response:
    # The empty icon keeps browsers from asking the REST app for /favicon.ico.
    return Response(f'<!doctype html><html><head><title>GitHub</title><link rel="icon" href="data:,"></head>'
                    f"<body>{body}</body></html>",
                    status=status, mimetype="text/html")
