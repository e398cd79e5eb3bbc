"""The Flask app of the stand-in: git smart HTTP, REST routes, auth and contract checks."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .github_api import SandboxError, caller, error, ok
from .github_app import Credential, git_allowed, refusal
from .github_app_routes import check_app_jwt, register_app_routes
from .github_contracts import ApiRequest, ApiResponse, request_errors, response_errors, schema_errors
from .github_git import GitError
from .github_manifest import register_manifest_routes
from .github_routes_checks import register_deployment_routes, register_status_routes
from .github_routes_code import register_code_routes, register_git_database_routes
from .github_routes_pulls import register_comment_routes, register_pull_routes
from .github_smart_http import run_http_backend

# Every group of REST routes, by what it serves.
ROUTES = (register_code_routes, register_git_database_routes, register_status_routes,
          register_deployment_routes, register_pull_routes, register_comment_routes)


def build_app(sandbox) -> Flask:
    app = Flask("mainline-sandbox-github")
    app.url_map.strict_slashes = False

    @app.route("/<owner>/<path:repo_path>", methods=["GET", "POST"])
    def git_smart_http(owner: str, repo_path: str):
        name, sep, rest = repo_path.partition(".git/")
        if not sep or owner in ("repos", "app", "users"):
            return error(404, "Not Found")
        repo = sandbox.repo(f"{owner}/{name}")
        push = rest == "git-receive-pack" or request.args.get("service") == "git-receive-pack"
        if repo.private and not git_allowed(g.get("credential"), repo.full_name, push):
            # What GitHub answers git without (good) credentials: a Basic challenge.
            return Response("Invalid username or token.", 401,
                            headers={"WWW-Authenticate": 'Basic realm="GitHub"'})
        if rest == "git-receive-pack":
            with sandbox.lock:  # a push and an API ref update must not interleave
                before = repo.git.branches()
                response = run_http_backend(sandbox.git_root, f"/{owner}/{name}.git/{rest}", request)
            sandbox.refs_changed(repo, before, pusher=g.get("login") or repo.owner)
            return response
        return run_http_backend(sandbox.git_root, f"/{owner}/{name}.git/{rest}", request)

    @app.before_request
    def authenticate_and_check():
        g.started = time.monotonic()
        if _is_git(request.path):
            g.login = _git_login(sandbox)
            g.credential = _git_credential(sandbox)
            return None
        if sandbox.validate and request.path.rstrip("/") not in UNVENDORED:
            g.api_request = _api_request()
            for problem in request_errors(g.api_request):
                sandbox.report_violation(f"request {request.method} {request.path}: {problem}")
        if request.path.rstrip("/") in ("/rate_limit", "/meta") or request.path.startswith("/app-manifests/"):
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            return error(401, "Requires authentication")
        if request.path.startswith("/app") or request.path.endswith("/installation"):
            return check_app_jwt(sandbox, token.strip())
        credential = sandbox.credential(token.strip())
        g.login, g.credential = credential.login, credential
        refused = refusal(credential, request.method, request.path)
        if refused is not None:
            status, message, headers = refused
            answer = error(status, message)
            answer.headers.update(headers)
            return answer
        return None

    @app.after_request
    def check_response(response: Response) -> Response:
        if _is_git(request.path):
            return response
        reset = int(time.time()) + 3600
        response.headers.update({"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999",
                                 "X-RateLimit-Used": "1", "X-RateLimit-Reset": str(reset),
                                 "X-RateLimit-Resource": "core", "X-GitHub-Media-Type": "github.v3"})
        if sandbox.validate and request.path.rstrip("/") in UNVENDORED and response.status_code == 200:
            for problem in schema_errors(UNVENDORED[request.path.rstrip("/")], response.get_json()):
                sandbox.report_violation(f"response {request.method} {request.path}: {problem}")
        if sandbox.validate and "api_request" in g:
            api_response = ApiResponse(response.status_code, response.get_data(),
                                       response.mimetype or "", response.headers)
            for problem in response_errors(g.api_request, api_response):
                sandbox.report_violation(
                    f"response {request.method} {request.path} -> {response.status_code}: {problem}")
        return response

    @app.errorhandler(Exception)
    def on_error(exc: Exception):
        if isinstance(exc, SandboxError):
            return error(exc.status, exc.message)
        if isinstance(exc, HTTPException):
            return error(exc.code or 500, exc.name)
        if isinstance(exc, GitError):
            return error(422, str(exc))
        sandbox.report_violation(f"stand-in crashed on {request.method} {request.path}: {exc!r}")
        raise exc

    for register in ROUTES:
        register(app, sandbox)
    register_account_routes(app, sandbox)
    register_app_routes(app, sandbox)
    register_manifest_routes(app, sandbox.manifests, sandbox.shapes.user)
    return app


def register_account_routes(app: Flask, sb) -> None:
    """People and the rate limit (the App's routes: github_app_routes)."""

    @app.get("/repos/<owner>/<name>/collaborators/<username>/permission")
    def collaborator_permission(owner, name, username):
        repo = sb.repo(f"{owner}/{name}")
        return ok(sb.shapes.permission(repo, username))

    @app.get("/user")
    def authenticated_user():
        return ok(sb.shapes.user(caller()))

    @app.get("/rate_limit")
    def rate_limit():
        return ok(sb.shapes.rate_limit(int(time.time()) + 3600))


# Paths the vendored OpenAPI subset leaves out, each held to the component GitHub answers with.
UNVENDORED = {"/user": "simple-user"}


def _git_login(sandbox) -> str | None:
    """Who pushes over smart HTTP: the user behind the Basic auth password (a token)."""
    auth = request.authorization
    # Only tokens given to someone name a pusher; others keep the owner, as pushes always had.
    if auth is None or not auth.password or auth.password not in sandbox.tokens:
        return None
    return sandbox.login_for(auth.password)


def _git_credential(sandbox) -> Credential | None:
    """The credential behind git's Basic auth (password: a token), or None (anonymous, bad)."""
    auth = request.authorization
    if auth is None or not auth.password:
        return None
    try:
        credential = sandbox.credential(auth.password)
    except SandboxError:
        return None  # an expired installation token
    if credential.kind == "lenient" and auth.password not in sandbox.apps.issued:
        return None  # over git, a token nobody issued proves nothing
    return credential


def _is_git(path: str) -> bool:
    return ".git/" in path


def _api_request() -> ApiRequest:
    return ApiRequest(request.method, request.path, request.get_data(),
                      request.mimetype or "", request.args, request.headers)
