"""REST routes of the stand-in for GitHub Apps: the app behind a JWT, a repository's installation,
and installation tokens carrying the permissions the installation was granted."""

from __future__ import annotations

import time

import jwt
from flask import Flask, Response, g

from .github_api import APP_SLUG, SandboxError, error, ok
from .github_app import App, Installation, iso
from .github_schema import node_id, shaped

# What the default (lenient) app's installation tokens may do: everything Mainline asks for.
LENIENT_PERMISSIONS = {"contents": "write", "pull_requests": "write", "statuses": "write", "checks": "write",
                       "deployments": "write", "issues": "write", "metadata": "read"}


def check_app_jwt(sb, token: str) -> Response | None:
    """GitHub's app endpoints take only an app JWT, and refuse one that lives too long. A JWT
    naming a registered App must carry that App's signature; `g.app` is the App (None: lenient)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return error(401, "A JSON web token could not be decoded")
    now = int(time.time())
    if "iss" not in claims or "exp" not in claims or "iat" not in claims:
        return error(401, "Missing 'issued at', 'expiration time' or 'issuer' claim")
    if claims["exp"] > now + 600:
        return error(401, "'Expiration time' claim ('exp') is too far in the future")
    if claims["exp"] <= now:
        return error(401, "'Expiration time' claim ('exp') must be a numeric value representing "
                          "the future time at which the assertion expires")
    if claims["iat"] > now + 60:
        return error(401, "'Issued at' claim ('iat') must be an Integer representing the time "
                          "that the assertion was issued")
    app = sb.apps.app(claims["iss"])
    if app is None and sb.apps.apps:
        return error(401, "Integration not found")
    if app is not None:
        try:
            jwt.decode(token, app.public_key, algorithms=["RS256"], options={"verify_exp": False,
                                                                            "verify_iat": False})
        except jwt.PyJWTError:
            return error(401, "A JSON web token could not be decoded")
    g.app = app
    return None


def register_app_routes(app: Flask, sb) -> None:
    @app.get("/app")
    def authenticated_app():
        registered: App | None = g.get("app")
        if registered is None:
            return ok(sb.shapes.app(APP_SLUG))
        return ok(shaped("integration", {
            "id": registered.id, "slug": registered.slug, "node_id": node_id("App", registered.slug),
            "name": registered.name, "owner": sb.shapes.user(registered.owner),
            "description": registered.description, "external_url": registered.url,
            "html_url": f"{sb.url}/apps/{registered.slug}", "created_at": iso(registered.created_at),
            "updated_at": iso(registered.created_at), "permissions": registered.permissions,
            "events": registered.events}))

    @app.get("/repos/<owner>/<name>/installation")
    def repo_installation(owner, name):
        full_name = f"{owner}/{name}"
        sb.repo(full_name)
        registered: App | None = g.get("app")
        if registered is None:
            return ok(_installation_shape(sb, None, owner, 1, LENIENT_PERMISSIONS))
        found = sb.apps.installation_for(registered, full_name)
        return ok(_installation_shape(sb, found, owner, found.id, found.permissions))

    @app.post("/app/installations/<int:installation_id>/access_tokens")
    def create_installation_token(installation_id):
        registered: App | None = g.get("app")
        installation = sb.apps.installations.get(installation_id)
        if registered is not None and (installation is None or installation.app is not registered):
            raise SandboxError(404, "Not Found")
        token, expires = sb.apps.issue(installation)
        permissions = installation.permissions if installation else LENIENT_PERMISSIONS
        selection = "all" if installation is None or installation.repositories is None else "selected"
        return ok({"token": token, "expires_at": iso(expires), "permissions": permissions,
                   "repository_selection": selection}, 201)


def _installation_shape(sb, installation: Installation | None, account: str, number: int,
                        permissions: dict) -> dict:
    app = installation.app if installation else None
    selection = "all" if installation is None or installation.repositories is None else "selected"
    return shaped("installation", {
        "id": number, "account": sb.shapes.user(account), "repository_selection": selection,
        "access_tokens_url": f"{sb.url}/app/installations/{number}/access_tokens",
        "repositories_url": f"{sb.url}/installation/repositories",
        "html_url": f"{sb.url}/settings/installations/{number}", "app_id": app.id if app else 1,
        "app_slug": app.slug if app else APP_SLUG, "target_id": 1, "target_type": "Organization",
        "permissions": permissions, "events": app.events if app else [],
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"})
