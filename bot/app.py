"""The Flask app factory: webhook intake, Slack endpoints, API, dashboard, metrics."""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, redirect, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from werkzeug.exceptions import BadRequest, HTTPException

from bot import oauth, pages
from bot.auth import SESSION_COOKIE, Authenticator, Principal
from bot.dora import DoraCollector, four_keys, parse_days
from bot.errors import MainlineError, NotFoundError
from bot.infra.clock import SystemClock
from bot.infra.db.inbox import Inbox
from bot.notify.release_reporter import releases_view
from bot.repair_metrics import RepairCollector
from bot.settings import Settings
from bot.sync_metrics import SyncCollector
from bot.usecases.queries import event_view
from handlers.github import intake as github_intake
from handlers.slack import actions as slack_actions
from handlers.slack import commands as slack_commands
from handlers.slack.common import SlackDeps

log = logging.getLogger("mainline.web")

# Reachable by anyone: GitHub and Slack sign their own requests, and the sign-in pages must be.
OPEN_ENDPOINTS = {"github_intake.github_webhook", "healthz", "slack_commands.on_slack_command",
                  "slack_actions.on_slack_action", "slack_commands", "slack_actions", "signin.login",
                  "signin.callback", "signin.logout", "static"}
# Open to everyone only with MAINLINE_PUBLIC_READ=true: the board, never the operator's views.
PUBLIC_READS = {"api_services", "api_deploys", "api_releases", "api_dora", "prometheus"} | pages.READ_ENDPOINTS
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def create_app(settings: Settings, adapters=None) -> Flask:
    """`adapters` is a bot.wiring.Wired (tests pass their own); by default built from settings."""
    from bot.wiring import wire

    wired = adapters or wire(settings, role="web")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["mainline"] = wired
    metrics = _metrics()
    metrics["registry"].register(SyncCollector(wired.store))
    metrics["registry"].register(DoraCollector(wired.store))
    metrics["registry"].register(RepairCollector(wired.store))
    inbox = Inbox(wired.store)
    authenticator = Authenticator(wired.store)

    @app.before_request
    def sign_in_required():
        """Every route but the open ones needs a signed-in user or a token of enough scope."""
        if request.endpoint in OPEN_ENDPOINTS:
            return None
        reading = request.method in READ_METHODS
        principal = authenticator.principal(request.headers.get("Authorization"),
                                            request.cookies.get(SESSION_COOKIE))
        if principal is None:
            if reading and settings.public_read and request.endpoint in PUBLIC_READS:
                g.principal = Principal("public", "anyone", "read")
                return None
            return _not_signed_in(settings)
        # A signed-in user's form: the page's action checks its CSRF token and the deployers.
        acting_on_a_page = principal.kind == "user" and request.endpoint in pages.ACTION_ENDPOINTS
        if not principal.may("read" if reading else "deploy") and not acting_on_a_page:
            return jsonify(error=f"the {principal.kind} {principal.name!r} may only read; "
                                 "acting needs a token with --scope deploy"), 403
        g.principal = principal
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description or exc.name), exc.code

    @app.errorhandler(NotFoundError)
    def not_found(exc: NotFoundError):
        return jsonify(error=str(exc)), 404

    @app.errorhandler(MainlineError)
    def mainline_error(exc: MainlineError):
        return jsonify(error=str(exc)), 400

    @app.get("/healthz")
    def healthz():
        return jsonify(ok=True)

    @app.get("/metrics")
    def prometheus():
        return Response(generate_latest(metrics["registry"]), content_type=CONTENT_TYPE_LATEST)

    @app.get("/api/services")
    def api_services():
        return jsonify(wired.pipeline.status())

    @app.get("/api/deploys")
    def api_deploys():
        service, limit = _service_and_limit()
        return jsonify(wired.pipeline.deploys(service, limit=limit))

    @app.get("/api/releases")
    def api_releases():
        service, limit = _service_and_limit()
        # Served from the store alone: PR titles and authors were kept when the release went out.
        return jsonify(releases_view(wired.pipeline, service, request.args.get("environment") or None, limit=limit))

    @app.get("/api/dora")
    def api_dora():
        service = request.args.get("service")
        if not service:
            raise BadRequest("the `service` query parameter is required")
        days = parse_days(request.args.get("days"))
        return jsonify(four_keys(wired.store, service, request.args.get("environment") or None, days))

    @app.get("/api/events")
    def api_events():
        """The audit log, oldest first; page on with `after` (the last id seen)."""
        try:
            after = max(0, int(request.args.get("after", "0")))
            limit = max(1, min(int(request.args.get("limit", "100")), 1000))
        except ValueError:
            raise BadRequest("`after` and `limit` must be whole numbers") from None
        rows = wired.store.events_since(after, limit, request.args.get("service") or None)
        return jsonify([event_view(r) for r in rows])

    @app.get("/api/deliveries")
    def api_deliveries():
        failed = request.args.get("failed", "false").lower() in ("1", "true", "yes")
        return jsonify([_delivery_json(d) for d in wired.store.deliveries(failed=failed)])

    app.register_blueprint(github_intake.blueprint(settings, inbox, wired.router, deliveries=metrics["webhooks"],
                                                   ack_seconds=metrics["ack"]))
    app.register_blueprint(pages.blueprint(settings, wired))
    app.register_blueprint(oauth.blueprint(settings, wired.store, wired.pipeline.w.github))
    _mount_slack(app, settings, wired)
    return app


def _not_signed_in(settings: Settings):
    """401 JSON for the API; for a page, off to GitHub's sign-in (or a page that says how)."""
    if request.path.startswith("/api/") or request.path == "/metrics" or not request.accept_mimetypes.accept_html:
        return jsonify(error="sign in, or send Authorization: Bearer <token> (mainline tokens create NAME "
                             "--scope read)"), 401
    if oauth.configured(settings):
        return redirect("/login?" + urlencode({"next": oauth.safe_next(request.full_path.rstrip("?"))}), 302)
    return oauth.page(401, "Sign in to Mainline",
                      "This board needs a signed-in GitHub user, and GitHub sign-in is not set up here "
                      "(GITHUB_OAUTH_CLIENT_ID and GITHUB_OAUTH_CLIENT_SECRET).")


DELIVERY_FIELDS = ("delivery_id", "event", "action", "received_at", "processed_at", "outcome", "attempts",
                   "next_attempt_at", "last_error", "dead_at")


def _delivery_json(delivery) -> dict:
    """A delivery without its payload: what came, when, and what became of it."""
    get = delivery.get if isinstance(delivery, dict) else lambda name: getattr(delivery, name, None)
    out = {}
    for name in DELIVERY_FIELDS:
        value = get(name)
        out[name] = value.isoformat() + "Z" if isinstance(value, datetime) else value
    return out


def _mount_slack(app: Flask, settings: Settings, wired) -> None:
    """Slack's endpoints, verified with the signing secret; a clear 404 when Slack is not set up."""
    if settings.slack_signing_secret is None or wired.slack is None:
        def slack_not_configured():
            return jsonify(error="Slack is not configured here (SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN)"), 404

        app.add_url_rule("/slack/commands", "slack_commands", slack_not_configured, methods=["POST"])
        app.add_url_rule("/slack/actions", "slack_actions", slack_not_configured, methods=["POST"])
        return
    deps = SlackDeps(signing_secret=settings.slack_signing_secret.get_secret_value(), pipeline=wired.pipeline,
                     chat=wired.slack, clock=SystemClock(), admins=settings.admin_ids())
    app.register_blueprint(slack_commands.blueprint(deps))
    app.register_blueprint(slack_actions.blueprint(deps))


def _service_and_limit() -> tuple[str, int]:
    """The `service` (required) and `limit` (1 to 200, default 20) query parameters, or a 400."""
    service = request.args.get("service")
    if not service:
        raise BadRequest("the `service` query parameter is required")
    try:
        limit = max(1, min(int(request.args.get("limit", "20")), 200))
    except ValueError:
        raise BadRequest("`limit` must be a whole number") from None
    return service, limit


def _metrics() -> dict:
    registry = CollectorRegistry()
    return {
        "registry": registry,
        "webhooks": Counter("mainline_webhooks_total", "GitHub webhook deliveries by event and outcome",
                            ["event", "outcome"], registry=registry),
        "ack": Histogram("mainline_webhook_ack_seconds", "Time to verify, record and queue a webhook",
                         registry=registry, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)),
    }
