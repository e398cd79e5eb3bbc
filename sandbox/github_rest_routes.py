"""REST endpoints of the stand-in, each answering as api.github.com does."""

from __future__ import annotations

import json
import time

from flask import Flask, Response, g, request

from .github_state import CheckRun, Comment, Deployment, DeploymentStatus, Status, next_id, now_iso

# Who the stand-in believes is calling: a bot token acts as the app's bot user.
APP_SLUG = "mainline"
BOT_LOGIN = f"{APP_SLUG}[bot]"


class _Body(dict):
    def __missing__(self, key):
        from .github import SandboxError

        raise SandboxError(422, f'Invalid request.\n\n"{key}" wasn\'t supplied.')


def caller() -> str:
    """The login behind the request's token."""
    return g.get("login") or BOT_LOGIN


def body() -> dict:
    """The JSON request body; a missing required field answers 422 as GitHub does."""
    data = request.get_json(silent=True, force=True)
    return _Body(data if isinstance(data, dict) else {})


def ok(payload, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def register_routes(app: Flask, sb) -> None:  # noqa: C901 - a flat table of small routes
    from .github import SandboxError
    from .github_rest import error, installation_token

    shapes = sb.shapes

    def commit_or_404(repo, ref: str):
        sha = repo.git.resolve(ref)
        if sha is None:
            raise SandboxError(404 if len(ref) != 40 else 422, f"No commit found for SHA: {ref}")
        return repo.git.commit(sha)

    def page(items: list) -> list:
        per_page = int(request.args.get("per_page", 30))
        number = int(request.args.get("page", 1))
        return items[(number - 1) * per_page: number * per_page]

    # -- repository, branches, commits --------------------------------------------------------

    @app.get("/repos/<owner>/<name>")
    def get_repo(owner, name):
        return ok(shapes.full_repo(sb.repo(f"{owner}/{name}")))

    @app.get("/repos/<owner>/<name>/branches/<path:branch>")
    def get_branch(owner, name, branch):
        repo = sb.repo(f"{owner}/{name}")
        sha = repo.git.branches().get(branch)
        if sha is None:
            return error(404, "Branch not found")
        return ok(shapes.branch(repo, branch, repo.git.commit(sha)))

    @app.get("/repos/<owner>/<name>/commits")
    def list_commits(owner, name):
        repo = sb.repo(f"{owner}/{name}")
        start = commit_or_404(repo, request.args.get("sha", repo.default_branch)).sha
        per_page = int(request.args.get("per_page", 30))
        shas = repo.git.log(start, limit=per_page * int(request.args.get("page", 1)))
        return ok([shapes.commit(repo, repo.git.commit(s), with_files=False) for s in page(shas)])

    @app.get("/repos/<owner>/<name>/commits/<path:ref>")
    def get_commit(owner, name, ref):
        repo = sb.repo(f"{owner}/{name}")
        return ok(shapes.commit(repo, commit_or_404(repo, ref)))

    @app.get("/repos/<owner>/<name>/commits/<path:ref>/pulls")
    def pulls_for_commit(owner, name, ref):
        repo = sb.repo(f"{owner}/{name}")
        sha = commit_or_404(repo, ref).sha
        # The PRs that made the commit: merged as it, or carrying it between base and head.
        pulls = [p for p in repo.pulls.values() if p.merge_commit_sha == sha
                 or sha in repo.git.commits_between(p.base_sha, p.head_sha)]
        pulls.sort(key=lambda p: p.number, reverse=True)
        return ok([shapes.pull_simple(repo, p) for p in page(pulls)])

    @app.get("/repos/<owner>/<name>/compare/<path:basehead>")
    def compare(owner, name, basehead):
        repo = sb.repo(f"{owner}/{name}")
        base_ref, sep, head_ref = basehead.partition("...")
        if not sep:
            return error(404, "Not Found")
        base, head = commit_or_404(repo, base_ref), commit_or_404(repo, head_ref)
        merge_base = repo.git.merge_base(base.sha, head.sha)
        if merge_base is None:
            return error(404, f"No common ancestor between {base_ref} and {head_ref}.")
        ahead = [repo.git.commit(s) for s in repo.git.commits_between(base.sha, head.sha)]
        behind = len(repo.git.commits_between(head.sha, base.sha))
        return ok(shapes.comparison(repo, base, head, repo.git.commit(merge_base), ahead, behind))

    @app.get("/repos/<owner>/<name>/contents/<path:path>")
    def get_contents(owner, name, path):
        repo = sb.repo(f"{owner}/{name}")
        sha = commit_or_404(repo, request.args.get("ref", repo.default_branch)).sha
        data = repo.git.read_file(sha, path)
        if data is None:
            return error(404, "Not Found")
        return ok(shapes.content_file(repo, sha, path, data))

    # -- git database -------------------------------------------------------------------------

    @app.get("/repos/<owner>/<name>/git/ref/<path:ref>")
    def get_ref(owner, name, ref):
        repo = sb.repo(f"{owner}/{name}")
        sha = repo.git.refs().get(f"refs/{ref}")
        if sha is None:
            return error(404, "Not Found")
        return ok(shapes.git_ref(repo, f"refs/{ref}", sha))

    @app.post("/repos/<owner>/<name>/git/refs")
    def create_ref(owner, name):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        ref, sha = data["ref"], data["sha"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            return error(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if repo.git.resolve(sha) != sha:
            return error(422, "Object does not exist")
        with sb.lock:
            before = repo.git.branches()
            if ref in repo.git.refs():
                return error(422, "Reference already exists")
            repo.git.update_ref(ref, sha)
        sb.refs_changed(repo, before, caller())
        return ok(shapes.git_ref(repo, ref, sha), 201)

    @app.patch("/repos/<owner>/<name>/git/refs/<path:ref>")
    def update_ref(owner, name, ref):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        full, sha = f"refs/{ref}", data["sha"]
        if repo.git.resolve(sha) != sha:
            return error(422, "Object does not exist")
        with sb.lock:
            before = repo.git.branches()
            current = repo.git.refs().get(full)
            if current is None:
                return error(422, "Reference does not exist")
            if not data.get("force") and repo.git.merge_base(current, sha) != current:
                return error(422, "Update is not a fast forward")
            repo.git.update_ref(full, sha, current)
        sb.refs_changed(repo, before, caller())
        return ok(shapes.git_ref(repo, full, sha))

    @app.get("/repos/<owner>/<name>/git/commits/<sha>")
    def get_git_commit(owner, name, sha):
        repo = sb.repo(f"{owner}/{name}")
        info = commit_or_404(repo, sha)
        return ok(shapes.git_commit(repo, info))

    # -- statuses and check runs ---------------------------------------------------------------

    @app.post("/repos/<owner>/<name>/statuses/<sha>")
    def create_status(owner, name, sha):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        info = commit_or_404(repo, sha)
        status = Status(info.sha, data["state"], data.get("context") or "default",
                        data.get("description"), data.get("target_url"), caller())
        with sb.lock:
            repo.statuses.append(status)
        return ok(shapes.status(repo, status), 201)

    @app.get("/repos/<owner>/<name>/commits/<path:ref>/status")
    def combined_status(owner, name, ref):
        repo = sb.repo(f"{owner}/{name}")
        sha = commit_or_404(repo, ref).sha
        latest: dict[str, Status] = {}
        for status in repo.statuses:
            if status.sha == sha:
                latest[status.context] = status
        return ok(shapes.combined_status(repo, sha, list(latest.values())))

    @app.post("/repos/<owner>/<name>/check-runs")
    def create_check_run(owner, name):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        info = commit_or_404(repo, data["head_sha"])
        run = CheckRun(info.sha, data["name"])
        _apply_check_run(run, data)
        with sb.lock:
            repo.check_runs[run.id] = run
        _after_check_run(sb, repo, run)
        return ok(shapes.check_run(repo, run), 201)

    @app.patch("/repos/<owner>/<name>/check-runs/<int:run_id>")
    def update_check_run(owner, name, run_id):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        run = repo.check_runs.get(run_id)
        if run is None:
            return error(404, "Not Found")
        was_completed = run.status == "completed"
        with sb.lock:
            _apply_check_run(run, data)
        if not was_completed:
            _after_check_run(sb, repo, run)
        return ok(shapes.check_run(repo, run))

    @app.get("/repos/<owner>/<name>/commits/<path:ref>/check-runs")
    def list_check_runs(owner, name, ref):
        repo = sb.repo(f"{owner}/{name}")
        sha = commit_or_404(repo, ref).sha
        runs = [r for r in repo.check_runs.values() if r.head_sha == sha]
        if "check_name" in request.args:
            runs = [r for r in runs if r.name == request.args["check_name"]]
        if "status" in request.args:
            runs = [r for r in runs if r.status == request.args["status"]]
        if request.args.get("filter", "latest") == "latest":
            newest = {r.name: r for r in sorted(runs, key=lambda r: r.id)}
            runs = list(newest.values())
        runs.sort(key=lambda r: r.id, reverse=True)
        return ok({"total_count": len(runs),
                   "check_runs": [shapes.check_run(repo, r) for r in page(runs)]})

    # -- deployments -----------------------------------------------------------------------------

    @app.post("/repos/<owner>/<name>/deployments")
    def create_deployment(owner, name):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        info = commit_or_404(repo, data["ref"])
        required = data.get("required_contexts")
        failing = _failing_contexts(repo, info.sha, required)
        if failing:
            return ok({"message": f"Conflict: Commit status checks failed for {data['ref']}.",
                       "documentation_url": DOCS_DEPLOY}, 409)
        environment = data.get("environment", "production")
        dep = Deployment(
            sha=info.sha, ref=data["ref"], task=data.get("task", "deploy"), environment=environment,
            description=data.get("description"), payload=data.get("payload", {}),
            creator=caller(),
            production_environment=data.get("production_environment", environment == "production"),
            transient_environment=data.get("transient_environment", False))
        with sb.lock:
            repo.deployments[dep.id] = dep
        return ok(shapes.deployment(repo, dep), 201)

    @app.get("/repos/<owner>/<name>/deployments")
    def list_deployments(owner, name):
        repo = sb.repo(f"{owner}/{name}")
        deps = sorted(repo.deployments.values(), key=lambda d: d.id, reverse=True)
        for field in ("sha", "ref", "task", "environment"):
            if field in request.args:
                deps = [d for d in deps if getattr(d, field) == request.args[field]]
        return ok([shapes.deployment(repo, d) for d in page(deps)])

    @app.post("/repos/<owner>/<name>/deployments/<int:dep_id>/statuses")
    def create_deployment_status(owner, name, dep_id):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        dep = repo.deployments.get(dep_id)
        if dep is None:
            return error(404, "Not Found")
        with sb.lock:
            status = _add_deployment_status(dep, data)
            if status.state == "success" and data.get("auto_inactive", True):
                for other in repo.deployments.values():
                    if (other is not dep and other.environment == dep.environment
                            and not other.transient_environment and other.statuses
                            and other.statuses[-1].state == "success"):
                        _add_deployment_status(other, {"state": "inactive"})
        # octokit's schema has no `inactive` deployment_status webhook (its state enum leaves it
        # out), so the stand-in sends none for it rather than invent a payload.
        if status.state != "inactive":
            sb.send_webhook("deployment_status", "deployment_status$created",
                            sb.events.deployment_status(repo, dep, status))
        return ok(shapes.deployment_status(repo, status), 201)

    @app.get("/repos/<owner>/<name>/deployments/<int:dep_id>/statuses")
    def list_deployment_statuses(owner, name, dep_id):
        repo = sb.repo(f"{owner}/{name}")
        dep = repo.deployments.get(dep_id)
        if dep is None:
            return error(404, "Not Found")
        return ok([shapes.deployment_status(repo, s) for s in page(dep.statuses[::-1])])

    # -- pull requests ---------------------------------------------------------------------------

    @app.post("/repos/<owner>/<name>/pulls")
    def create_pull(owner, name):
        data = body()
        head = data["head"].split(":", 1)[-1]
        number = sb.open_pull(f"{owner}/{name}", head, data["base"], data.get("title", head),
                              data.get("body") or "", caller(), draft=bool(data.get("draft", False)))
        repo = sb.repo(f"{owner}/{name}")
        pull = repo.pulls[number]
        return ok(shapes.pull(repo, pull, sb.mergeable(repo, pull)), 201)

    @app.get("/repos/<owner>/<name>/pulls")
    def list_pulls(owner, name):
        repo = sb.repo(f"{owner}/{name}")
        state = request.args.get("state", "open")
        pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
        if "head" in request.args:
            pulls = [p for p in pulls if p.head == request.args["head"].split(":", 1)[-1]]
        if "base" in request.args:
            pulls = [p for p in pulls if p.base == request.args["base"]]
        pulls.sort(key=lambda p: p.number, reverse=request.args.get("direction", "desc") == "desc")
        return ok([shapes.pull_simple(repo, p) for p in page(pulls)])

    @app.get("/repos/<owner>/<name>/pulls/<int:number>")
    def get_pull(owner, name, number):
        repo = sb.repo(f"{owner}/{name}")
        pull = sb.pull(repo.full_name, number)
        return ok(shapes.pull(repo, pull, sb.mergeable(repo, pull)))

    @app.patch("/repos/<owner>/<name>/pulls/<int:number>")
    def update_pull(owner, name, number):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        pull = sb.pull(repo.full_name, number)
        with sb.lock:
            for field in ("title", "body"):
                if isinstance(data.get(field), str):
                    setattr(pull, field, data[field])
            pull.updated_at = now_iso()
        if data.get("state") == "closed":
            sb.close_pull(repo.full_name, number, caller())
        return ok(shapes.pull(repo, pull, sb.mergeable(repo, pull)))

    @app.put("/repos/<owner>/<name>/pulls/<int:number>/merge")
    def merge_pull(owner, name, number):
        data = body()
        if data.get("merge_method", "merge") != "merge":
            return error(405, f"{data['merge_method']} merges are not allowed on this repository.")
        sha = sb.merge_pull(f"{owner}/{name}", number, caller(),
                            expected_head_sha=data.get("sha"), commit_title=data.get("commit_title"),
                            commit_message=data.get("commit_message"))
        return ok({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})

    # -- issue comments and reactions -------------------------------------------------------------

    @app.post("/repos/<owner>/<name>/issues/<int:number>/comments")
    def create_comment(owner, name, number):
        repo = sb.repo(f"{owner}/{name}")
        comment_id = sb.comment(repo.full_name, number, body()["body"], caller())
        return ok(shapes.comment(repo, repo.comments[comment_id]), 201)

    @app.get("/repos/<owner>/<name>/issues/<int:number>/comments")
    def list_comments(owner, name, number):
        repo = sb.repo(f"{owner}/{name}")
        sb.pull(repo.full_name, number)
        comments = sorted((c for c in repo.comments.values() if c.issue_number == number),
                          key=lambda c: c.id)
        return ok([shapes.comment(repo, c) for c in page(comments)])

    @app.patch("/repos/<owner>/<name>/issues/comments/<int:comment_id>")
    def update_comment(owner, name, comment_id):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        comment: Comment | None = repo.comments.get(comment_id)
        if comment is None:
            return error(404, "Not Found")
        with sb.lock:
            comment.body, comment.updated_at = data["body"], now_iso()
        return ok(shapes.comment(repo, comment))

    @app.post("/repos/<owner>/<name>/issues/comments/<int:comment_id>/reactions")
    def create_reaction(owner, name, comment_id):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        comment = repo.comments.get(comment_id)
        if comment is None:
            return error(404, "Not Found")
        content = data["content"]
        with sb.lock:
            for existing_id, existing, login in comment.reactions:
                if existing == content and login == caller():
                    # GitHub answers 200 with the reaction it already has: reacting is idempotent.
                    return ok(shapes.reaction(existing_id, content, login), 200)
            reaction_id = next_id()
            comment.reactions.append((reaction_id, content, caller()))
        return ok(shapes.reaction(reaction_id, content, caller()), 201)

    # -- people, apps, limits ------------------------------------------------------------------

    @app.get("/repos/<owner>/<name>/collaborators/<username>/permission")
    def collaborator_permission(owner, name, username):
        repo = sb.repo(f"{owner}/{name}")
        return ok(shapes.permission(repo, username))

    @app.get("/user")
    def authenticated_user():
        return ok(shapes.user(caller()))

    @app.get("/app")
    def authenticated_app():
        return ok(shapes.app(APP_SLUG))

    @app.post("/app/installations/<int:installation_id>/access_tokens")
    def create_installation_token(installation_id):
        return ok(installation_token(), 201)

    @app.get("/rate_limit")
    def rate_limit():
        return ok(shapes.rate_limit(int(time.time()) + 3600))


DOCS_DEPLOY = "https://docs.github.com/rest/deployments/deployments#create-a-deployment"


def _apply_check_run(run: CheckRun, data: dict) -> None:
    for field in ("name", "details_url", "external_id", "started_at", "completed_at"):
        if field in data:
            setattr(run, field, data[field])
    if "output" in data:
        run.output = dict(data["output"])
    if "conclusion" in data:
        # Setting a conclusion completes the run, as on GitHub.
        run.conclusion, run.status = data["conclusion"], "completed"
        run.completed_at = data.get("completed_at") or run.completed_at or now_iso()
    elif "status" in data:
        run.status = data["status"]
        if run.status == "completed":
            run.completed_at = run.completed_at or now_iso()


def _after_check_run(sb, repo, run: CheckRun) -> None:
    if run.status == "completed":
        sb.send_webhook("check_run", "check_run$completed",
                        sb.events.check_run(repo, run, caller()))


def _failing_contexts(repo, sha: str, required: list[str] | None) -> list[str]:
    """Contexts that block a deployment: by default every context on the sha must be green."""
    latest: dict[str, str] = {}
    for status in repo.statuses:
        if status.sha == sha:
            latest[status.context] = status.state
    contexts = latest.keys() if required is None else required
    return [c for c in contexts if latest.get(c) != "success"]


def _add_deployment_status(dep: Deployment, data: dict) -> DeploymentStatus:
    previous = dep.statuses[-1] if dep.statuses else None
    status = DeploymentStatus(
        deployment_id=dep.id, state=data["state"], creator=caller(),
        description=data.get("description", ""),
        environment=data.get("environment", dep.environment),
        environment_url=data.get("environment_url", previous.environment_url if previous else ""),
        log_url=data.get("log_url", data.get("target_url", "")))
    dep.statuses.append(status)
    return status
