"""The pages people use: the board (`/`), a stack page per service, a page per deploy, and the
actions a deployer takes from them. Actions go through the same pipeline commands as Slack and
the CLI; a signed-in user's form carries a CSRF token bound to their session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from urllib.parse import quote

from flask import Blueprint, Response, g, make_response, redirect, render_template, request

from bot.auth import SESSION_COOKIE
from bot.errors import AuthError, MainlineError, NotFoundError
from bot.page_views import deploy_page_view, recorded_config, seconds_text, stack_view

log = logging.getLogger("mainline.pages")

FLASH_COOKIE = "mainline_flash"
CSRF_FIELD = "csrf"
REF_MAX, REASON_MAX = 200, 500
# The endpoints a signed-in user (a read-scope session) may POST to: each checks CSRF and deployers.
ACTIONS = ("deploy", "rollback", "lock", "unlock", "approve", "reject")
ACTION_ENDPOINTS = frozenset(f"pages.{name}" for name in ACTIONS)
READ_ENDPOINTS = frozenset({"pages.dashboard", "pages.stack", "pages.deploy_page"})


def csrf_token(session_id: str) -> str:
    """Keyed by the session id, which only the signed-in browser holds (an HttpOnly cookie; the
    database keeps only its SHA-256): another site can neither read nor compute it."""
    return hmac.new(session_id.encode(), b"mainline-csrf-v1", hashlib.sha256).hexdigest()


def csrf_ok(session_id: str | None, presented: str | None) -> bool:
    if not session_id or not presented:
        return False
    return hmac.compare_digest(csrf_token(session_id), presented)


def blueprint(settings, wired) -> Blueprint:
    bp = Blueprint("pages", __name__)
    pipeline = wired.pipeline
    github = settings.github_web_base()
    bp.add_app_template_filter(seconds_text, "duration_text")

    def render(template: str, status: int = 200, **context) -> Response:
        principal = g.get("principal")
        session_id = request.cookies.get(SESSION_COOKIE, "") if principal and principal.kind == "user" else ""
        response = make_response(render_template(
            template, github=github, principal=principal, csrf=csrf_token(session_id) if session_id else "",
            flash=_read_flash(), **context), status)
        response.headers["Cache-Control"] = "no-store"
        # Pages with buttons are never framed (clickjacking), not even by a sibling host.
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        if request.cookies.get(FLASH_COOKIE):
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def refused(status: int, title: str, message: str, back: str = "/") -> Response:
        return render("message.html", status, title=title, message=message, back=back)

    @bp.get("/")
    def dashboard():
        services = pipeline.status()
        recent = {s["service"]: pipeline.deploys(s["service"], limit=5) for s in services}
        return render("dashboard.html", services=services, recent=recent)

    @bp.get("/services/<name>")
    def stack(name: str):
        try:
            view = stack_view(pipeline, name)
        except NotFoundError:
            return refused(404, "No such service", f"Mainline deploys no service named {name[:64]!r}.")
        for env in view["environments"]:
            env["may_act"] = may_act(env["deployers"])
        return render("stack.html", stack=view)

    @bp.get("/deploys/<deploy_id>")
    def deploy_page(deploy_id: str):
        try:
            view = deploy_page_view(pipeline, int(deploy_id)) if deploy_id.isdigit() and len(deploy_id) < 10 \
                else None
        except NotFoundError:
            view = None
        if view is None:
            return refused(404, "No such deploy", f"There is no deploy {deploy_id[:20]!r}.")
        config = recorded_config(pipeline.store.service(view["service"]))
        env = config.environments.get(view["environment"]) if config else None
        return render("deploy.html", d=view, may_act=may_act(list(env.deployers) if env else []))

    def may_act(deployers: list[str]) -> bool:
        """Whether to show the buttons; the POST decides again from the production config."""
        principal = g.get("principal")
        if principal is None or principal.kind == "public":
            return False
        if principal.kind == "token":
            return principal.may("deploy")
        return f"github:{principal.name}" in deployers

    def act(service: str, environment: str, back: str, do: Callable[[str], str]) -> Response:
        """Check the form's CSRF token and who may act, run `do(who)`, and say how it went."""
        principal = g.principal
        if principal.kind == "user":
            if not csrf_ok(request.cookies.get(SESSION_COOKIE), request.form.get(CSRF_FIELD)):
                log.info("pages: refused a %s without a valid CSRF token from github:%s", request.endpoint,
                         principal.name)
                return refused(403, "Refused", "This form is stale or did not come from Mainline's own page "
                               "(its CSRF token is missing or wrong). Reload the page and try again.", back)
            who = f"github:{principal.name}"
        else:
            who = f"token:{principal.name}"  # a deploy-scope token is an operator's, like the CLI
        try:
            if principal.kind == "user":
                pipeline.authorise(service, environment, who)
            message = do(who)
        except AuthError as exc:
            return refused(403, "Not allowed", str(exc), back)
        except MainlineError as exc:
            return _redirect_with(back, "error", str(exc))
        log.info("pages: %s by %s on %s/%s: %s", request.endpoint, who, service, environment, message)
        return _redirect_with(back, "ok", message)

    def text(name: str, limit: int) -> str:
        return " ".join((request.form.get(name) or "").split())[:limit]

    @bp.post("/services/<name>/<environment>/deploy")
    def deploy(name: str, environment: str):
        ref = text("ref", REF_MAX) or None

        def run(who: str) -> str:
            d = pipeline.request_deploy(name, environment, ref, who)
            return f"Deploy #{d['id']} of {d['sha'][:12]} to {environment} is {d['state']}."
        return act(name, environment, f"/services/{quote(name)}", run)

    @bp.post("/services/<name>/<environment>/rollback")
    def rollback(name: str, environment: str):
        def run(who: str) -> str:
            d = pipeline.rollback(name, environment, who)
            return f"Rolling {name} back in {environment} (deploy #{d['id']})."
        return act(name, environment, f"/services/{quote(name)}", run)

    @bp.post("/services/<name>/<environment>/lock")
    def lock(name: str, environment: str):
        reason = text("reason", REASON_MAX)

        def run(who: str) -> str:
            pipeline.lock(name, environment, who, reason)
            return f"Locked {name} in {environment}: {reason}"
        return act(name, environment, f"/services/{quote(name)}", run)

    @bp.post("/services/<name>/<environment>/unlock")
    def unlock(name: str, environment: str):
        def run(who: str) -> str:
            pipeline.unlock(name, environment, who)
            return f"Unlocked {name} in {environment}."
        return act(name, environment, f"/services/{quote(name)}", run)

    def decide(deploy_id: int, approved: bool) -> Response:
        try:
            view = pipeline.deploy_view(pipeline.store.deploy(deploy_id))
        except NotFoundError:
            return refused(404, "No such deploy", f"There is no deploy {deploy_id}.")
        where = (view["service"], view["environment"])
        reason = text("reason", REASON_MAX)

        def run(who: str) -> str:
            pipeline.approve(deploy_id, who, approved, reason, where=where)
            return f"{'Approved' if approved else 'Rejected'} deploy #{deploy_id}."
        return act(*where, f"/deploys/{deploy_id}", run)

    @bp.post("/deploys/<int:deploy_id>/approve")
    def approve(deploy_id: int):
        return decide(deploy_id, True)

    @bp.post("/deploys/<int:deploy_id>/reject")
    def reject(deploy_id: int):
        return decide(deploy_id, False)

    return bp


def _redirect_with(back: str, kind: str, message: str):
    """Post/redirect/get: the outcome rides in a short-lived cookie and shows once."""
    response = redirect(back, 303)
    value = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": message[:600]}).encode()).decode()
    response.set_cookie(FLASH_COOKIE, value, max_age=60, httponly=True, samesite="Lax", path="/",
                        secure=request.host_url.startswith("https://"))
    return response


def _read_flash() -> dict | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or len(raw) > 2000:
        return None
    try:
        flash = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return None
    if not isinstance(flash, dict) or not isinstance(flash.get("text"), str):
        return None
    return {"kind": "error" if flash.get("kind") == "error" else "ok", "text": flash["text"]}
