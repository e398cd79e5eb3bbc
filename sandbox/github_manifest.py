"""GitHub's App-manifest flow in the stand-in.

A browser posts a form with a `manifest` (JSON) to `/settings/apps/new?state=…` (or
`/organizations/ORG/settings/apps/new`); GitHub registers the App once the person confirms and
redirects to the manifest's `redirect_url` with `?code=…&state=…`; the code is exchanged, once and
within an hour, at `POST /app-manifests/{code}/conversions` for the App's id, key, client secret
and webhook secret. The stand-in confirms on the person's behalf: its page answers the post with
the redirect at once.
"""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import urlencode, urlsplit

from flask import Flask
from werkzeug.wrappers import Request, Response

from .github_api import SandboxError, ok
from .github_app import LEVELS, Apps, iso
from .github_schema import node_id, shaped

CODE_LIFETIME = 3600.0
# The manifest keys GitHub documents; any other is refused rather than silently ignored.
MANIFEST_KEYS = {"name", "url", "hook_attributes", "redirect_url", "callback_urls", "setup_url", "description",
                 "public", "default_events", "default_permissions", "request_oauth_on_install",
                 "setup_on_update"}


class Manifests:
    """Codes handed out by the manifest page, each good for one conversion within the hour."""

    def __init__(self, apps: Apps):
        self.apps = apps
        self.pending: dict[str, tuple[dict, str, float]] = {}  # code -> (manifest, owner, issued at)

    def accept(self, manifest: dict, owner: str) -> str:
        code = secrets.token_hex(10)
        self.pending[code] = (manifest, owner, time.time())
        return code

    def convert(self, code: str) -> tuple[dict, str]:
        manifest, owner, issued = self.pending.pop(code, (None, "", 0.0))
        if manifest is None or time.time() - issued > CODE_LIFETIME:
            raise SandboxError(404, "Not Found")
        hook = manifest.get("hook_attributes") or {}
        app, pem = self.apps.register(
            slug=_slug(manifest["name"]), name=manifest["name"], owner=owner,
            permissions=dict(manifest.get("default_permissions") or {}),
            events=list(manifest.get("default_events") or []), url=manifest["url"],
            hook_url=hook.get("url") if hook.get("active", True) else None,
            description=manifest.get("description") or "")
        return _app_body(app, manifest), pem


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def _app_body(app, manifest: dict) -> dict:
    return {"id": app.id, "slug": app.slug, "node_id": node_id("App", app.slug), "name": app.name,
            "owner": {"login": app.owner}, "description": app.description, "external_url": app.url,
            "html_url": f"https://github.com/apps/{app.slug}", "created_at": iso(app.created_at),
            "updated_at": iso(app.created_at), "permissions": app.permissions, "events": app.events,
            "client_id": app.client_id, "client_secret": app.client_secret, "webhook_secret": app.webhook_secret}


def manifest_problem(manifest: object) -> str | None:
    """Why GitHub would refuse this manifest, or None."""
    if not isinstance(manifest, dict):
        return "The manifest must be a JSON object"
    unknown = set(manifest) - MANIFEST_KEYS
    if unknown:
        return f"Unknown manifest keys: {', '.join(sorted(unknown))}"
    for key in ("name", "url"):
        if not isinstance(manifest.get(key), str) or not manifest[key].strip():
            return f"The manifest needs `{key}`"
    if len(manifest["name"]) > 34:
        return "Name is too long (maximum is 34 characters)"
    hook = manifest.get("hook_attributes")
    if hook is not None and (not isinstance(hook, dict) or not str(hook.get("url", "")).startswith("http")):
        return "hook_attributes.url must be an http(s) URL"
    permissions = manifest.get("default_permissions") or {}
    if not isinstance(permissions, dict) or any(v not in LEVELS for v in permissions.values()):
        return "default_permissions must map permission names to read, write or admin"
    events = manifest.get("default_events") or []
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        return "default_events must be a list of event names"
    if events and hook is None:
        return "default_events need hook_attributes (a webhook URL)"
    return None


def with_manifests(rest_app, manifests: Manifests):
    """The stand-in's WSGI app with the manifest page in front of `rest_app`."""

    def app(environ, start_response):
        request = Request(environ)
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and (parts == ["settings", "apps", "new"]
                                         or (len(parts) == 5 and parts[0] == "organizations"
                                             and parts[2:] == ["settings", "apps", "new"])):
            owner = parts[1] if parts[0] == "organizations" else "octocat"
            return _new_app_page(request, manifests, owner)(environ, start_response)
        return rest_app(environ, start_response)

    return app


def _new_app_page(request: Request, manifests: Manifests, owner: str) -> Response:
    try:
        manifest = json.loads(request.form.get("manifest", ""))
    except ValueError:
        manifest = None
    problem = manifest_problem(manifest)
    if problem is not None:
        return Response(f"<h1>Invalid GitHub App manifest</h1><p>{_escape(problem)}</p>", 422,
                        content_type="text/html; charset=utf-8")
    redirect = manifest.get("redirect_url")
    if not redirect or urlsplit(redirect).scheme not in ("http", "https"):
        return Response("<h1>Invalid GitHub App manifest</h1><p>redirect_url is needed</p>", 422,
                        content_type="text/html; charset=utf-8")
    code = manifests.accept(manifest, owner)
    query = {"code": code, **({"state": request.args["state"]} if "state" in request.args else {})}
    separator = "&" if urlsplit(redirect).query else "?"
    return Response("", 302, headers={"Location": f"{redirect}{separator}{urlencode(query)}"})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def register_manifest_routes(app: Flask, manifests: Manifests, owner_shape) -> None:
    @app.post("/app-manifests/<code>/conversions")
    def create_from_manifest(code):
        body, pem = manifests.convert(code)
        body["owner"] = owner_shape(body["owner"]["login"])
        return ok(shaped("integration", {**body, "pem": pem}), 201)
