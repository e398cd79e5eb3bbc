"""REST routes of the stand-in for what is said about a commit: statuses, check runs and
deployments with their statuses, each answering as api.github.com does."""

from __future__ import annotations

from flask import Flask, request

from .github_api import body, caller, commit_or_404, found, ok, page
from .github_state import CheckRun, Deployment, DeploymentStatus, Repo, Status, now_iso

DOCS_DEPLOY = "https://docs.github.com/rest/deployments/deployments#create-a-deployment"


def register_status_routes(app: Flask, sb) -> None:
    """Commit statuses and check runs; a check run that completes sends `check_run`."""
    shapes = sb.shapes

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
        run = found(repo.check_runs, run_id)
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


def register_deployment_routes(app: Flask, sb) -> None:
    """Deployments and their statuses; a status other than `inactive` sends `deployment_status`."""
    shapes = sb.shapes

    @app.post("/repos/<owner>/<name>/deployments")
    def create_deployment(owner, name):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        info = commit_or_404(repo, data["ref"])
        if _failing_contexts(repo, info.sha, data.get("required_contexts")):
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
        repo = sb.repo(f"{owner}/{name}")
        dep, data = found(repo.deployments, dep_id), body()
        with sb.lock:
            status = _add_deployment_status(dep, data)
            if status.state == "success" and data.get("auto_inactive", True):
                _deactivate_others(repo, dep)
        # octokit's schema has no `inactive` deployment_status webhook (its state enum leaves it
        # out), so the stand-in sends none for it rather than invent a payload.
        if status.state != "inactive":
            sb.send_webhook("deployment_status", "deployment_status$created",
                            sb.events.deployment_status(repo, dep, status))
        return ok(shapes.deployment_status(repo, status), 201)

    @app.get("/repos/<owner>/<name>/deployments/<int:dep_id>/statuses")
    def list_deployment_statuses(owner, name, dep_id):
        repo = sb.repo(f"{owner}/{name}")
        dep = found(repo.deployments, dep_id)
        return ok([shapes.deployment_status(repo, s) for s in page(dep.statuses[::-1])])


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


def _after_check_run(sb, repo: Repo, run: CheckRun) -> None:
    if run.status == "completed":
        sb.send_webhook("check_run", "check_run$completed",
                        sb.events.check_run(repo, run, caller()))


def _failing_contexts(repo: Repo, sha: str, required: list[str] | None) -> list[str]:
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


def _deactivate_others(repo: Repo, dep: Deployment) -> None:
    """A successful deployment makes the earlier live ones of its environment inactive (GitHub's
    `auto_inactive`), except transient environments'."""
    for other in repo.deployments.values():
        if (other is not dep and other.environment == dep.environment
                and not other.transient_environment and other.statuses
                and other.statuses[-1].state == "success"):
            _add_deployment_status(other, {"state": "inactive"})
