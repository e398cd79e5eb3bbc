"""REST response bodies of the stand-in, shaped by GitHub's own OpenAPI schemas.

Each body starts as a skeleton holding every property the schema requires (so a client that reads
a field GitHub always sends finds it), then the values the stand-in knows are laid over it.
"""

from __future__ import annotations

import base64
import copy
import functools
from datetime import datetime, timezone

from .github_contracts import openapi_document
from .github_git import BareRepo, CommitInfo
from .github_state import (CheckRun, Comment, Deployment, DeploymentStatus, Pull, Repo, Status,
                           now_iso, user_id)

EPOCH = "2024-01-01T00:00:00Z"


@functools.cache
def skeleton(component: str) -> dict:
    doc = openapi_document()
    return _skeleton(doc, doc["components"]["schemas"][component])


def _skeleton(doc: dict, schema: dict):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _skeleton(doc, doc["components"]["schemas"][name])
    if schema.get("nullable"):
        return None
    if "allOf" in schema:
        merged: dict = {}
        for part in schema["allOf"]:
            merged.update(_skeleton(doc, part) or {})
        return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return _skeleton(doc, schema[key][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _skeleton(doc, props.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "string":
        return {"date-time": EPOCH, "uri": "https://api.github.com/"}.get(schema.get("format"), "")
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return None


def shaped(component: str, values: dict) -> dict:
    """The skeleton of `component` with `values` laid over it (nested dicts merged)."""
    return _overlay(copy.deepcopy(skeleton(component)), values)


def _overlay(base, values: dict) -> dict:
    if not isinstance(base, dict):
        base = {}
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and not value.get("__replace__"):
            base[key] = _overlay(base[key], value)
        else:
            base[key] = value
    return base


def node_id(kind: str, ident: int | str) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode()


class Shapes:
    """Build REST bodies for one stand-in, whose URLs start with `base_url`."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")

    # -- people and repositories -------------------------------------------------------------

    def user(self, login: str | None) -> dict | None:
        if login is None:
            return None
        api = f"{self.base}/users/{login}"
        values = {
            "login": login, "id": user_id(login), "node_id": node_id("User", login),
            "type": "Bot" if login.endswith("[bot]") else "User", "site_admin": False,
            "avatar_url": f"{self.base}/avatars/{login}", "gravatar_id": "",
            "url": api, "html_url": f"{self.base}/{login}",
        }
        for name in ("followers", "following", "gists", "starred", "subscriptions",
                     "organizations", "repos", "events", "received_events"):
            values[f"{name}_url"] = f"{api}/{name}"
        return shaped("simple-user", values)

    def app(self, slug: str) -> dict:
        """The GitHub App behind an app JWT; its bot user is `<slug>[bot]`."""
        return shaped("integration", {
            "id": user_id(slug), "slug": slug, "node_id": node_id("App", slug), "name": slug.title(),
            "owner": self.user("acme"), "description": "", "external_url": self.base,
            "html_url": f"{self.base}/apps/{slug}", "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z", "events": [],
            "permissions": {"contents": "write", "pull_requests": "write", "issues": "write",
                            "checks": "write", "statuses": "write", "deployments": "write"}})

    def repo_urls(self, repo: Repo) -> dict:
        api = f"{self.base}/repos/{repo.full_name}"
        return {
            "url": api, "html_url": f"{self.base}/{repo.full_name}",
            "clone_url": f"{self.base}/{repo.full_name}.git",
            "git_url": f"{self.base}/{repo.full_name}.git", "ssh_url": f"{self.base}/{repo.full_name}.git",
            "svn_url": f"{self.base}/{repo.full_name}",
            **{f"{name}_url": f"{api}/{name}" for name in (
                "archive", "assignees", "blobs", "branches", "collaborators", "comments", "commits",
                "compare", "contents", "contributors", "deployments", "downloads", "events", "forks",
                "git_commits", "git_refs", "git_tags", "hooks", "issue_comment", "issue_events",
                "issues", "keys", "labels", "languages", "merges", "milestones", "notifications",
                "pulls", "releases", "stargazers", "statuses", "subscribers", "subscription", "tags",
                "teams", "trees")},
        }

    def repo_values(self, repo: Repo) -> dict:
        return {
            "id": repo.id, "node_id": node_id("Repository", repo.id), "name": repo.name,
            "full_name": repo.full_name, "owner": self.user(repo.owner), "private": True,
            "fork": False, "default_branch": repo.default_branch, "visibility": "private",
            "created_at": repo.created_at, "updated_at": repo.pushed_at, "pushed_at": repo.pushed_at,
            "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False,
            "has_downloads": True, "archived": False, "disabled": False, "description": None,
            "homepage": None, "language": None, "license": None, "mirror_url": None,
            "open_issues": sum(p.state == "open" for p in repo.pulls.values()),
            "open_issues_count": sum(p.state == "open" for p in repo.pulls.values()),
            **self.repo_urls(repo),
        }

    def full_repo(self, repo: Repo) -> dict:
        return shaped("full-repository", {**self.repo_values(repo), "permissions": {
            "admin": True, "maintain": True, "push": True, "triage": True, "pull": True}})

    def repo(self, repo: Repo) -> dict:
        return shaped("repository", self.repo_values(repo))

    def minimal_repo(self, repo: Repo) -> dict:
        return shaped("minimal-repository", self.repo_values(repo))

    # -- commits -------------------------------------------------------------------------------

    def git_person(self, person) -> dict:
        return {"name": person.name, "email": person.email, "date": person.date}

    def commit(self, repo: Repo, info: CommitInfo, with_files: bool = True) -> dict:
        api = f"{self.base}/repos/{repo.full_name}"
        values = {
            "sha": info.sha, "node_id": node_id("Commit", info.sha),
            "url": f"{api}/commits/{info.sha}", "html_url": f"{self.base}/{repo.full_name}/commit/{info.sha}",
            "comments_url": f"{api}/commits/{info.sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{info.sha}", "message": info.message, "comment_count": 0,
                "author": self.git_person(info.author), "committer": self.git_person(info.committer),
                "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
            },
            "author": self.user(_login_of(info.author.email)),
            "committer": self.user(_login_of(info.committer.email)),
            "parents": [{"sha": p, "url": f"{api}/commits/{p}",
                         "html_url": f"{self.base}/{repo.full_name}/commit/{p}"} for p in info.parents],
        }
        if with_files:
            old = info.parents[0] if info.parents else None
            values["files"] = [self.diff_entry(repo, info.sha, change)
                               for change in repo.git.changes(old, info.sha)]
            values["stats"] = {"additions": 0, "deletions": 0, "total": 0}
        return shaped("commit", values)

    def diff_entry(self, repo: Repo, sha: str, change) -> dict:
        blob = repo.git.blob_sha(sha, change.path) or "0" * 40
        raw = f"{self.base}/{repo.full_name}/raw/{sha}/{change.path}"
        return shaped("diff-entry", {
            "sha": blob, "filename": change.path, "status": change.status, "additions": 0,
            "deletions": 0, "changes": 0, "blob_url": raw, "raw_url": raw,
            "contents_url": f"{self.base}/repos/{repo.full_name}/contents/{change.path}?ref={sha}",
        })

    def git_commit(self, repo: Repo, info: CommitInfo) -> dict:
        api = f"{self.base}/repos/{repo.full_name}/git"
        return shaped("git-commit", {
            "sha": info.sha, "node_id": node_id("Commit", info.sha), "url": f"{api}/commits/{info.sha}",
            "html_url": f"{self.base}/{repo.full_name}/commit/{info.sha}",
            "author": self.git_person(info.author), "committer": self.git_person(info.committer),
            "tree": {"sha": info.tree, "url": f"{api}/trees/{info.tree}"}, "message": info.message,
            "parents": [{"sha": p, "url": f"{api}/commits/{p}",
                         "html_url": f"{self.base}/{repo.full_name}/commit/{p}"} for p in info.parents],
            "verification": {"verified": False, "reason": "unsigned", "signature": None,
                             "payload": None, "verified_at": None},
        })

    def git_ref(self, repo: Repo, ref: str, sha: str) -> dict:
        api = f"{self.base}/repos/{repo.full_name}/git"
        return shaped("git-ref", {
            "ref": ref, "node_id": node_id("Ref", ref), "url": f"{api}/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{api}/commits/{sha}"},
        })

    def branch(self, repo: Repo, name: str, info: CommitInfo) -> dict:
        api = f"{self.base}/repos/{repo.full_name}/branches/{name}"
        return shaped("branch-with-protection", {
            "name": name, "commit": self.commit(repo, info, with_files=False), "protected": False,
            "protection": {"enabled": False}, "protection_url": f"{api}/protection",
            "_links": {"html": f"{self.base}/{repo.full_name}/tree/{name}", "self": api},
        })

    def comparison(self, repo: Repo, base: CommitInfo, head: CommitInfo, merge_base: CommitInfo,
                   ahead: list[CommitInfo], behind: int) -> dict:
        status = "identical" if not ahead and not behind else (
            "ahead" if not behind else "behind" if not ahead else "diverged")
        spec = f"{base.sha}...{head.sha}"
        return shaped("commit-comparison", {
            "url": f"{self.base}/repos/{repo.full_name}/compare/{spec}",
            "html_url": f"{self.base}/{repo.full_name}/compare/{spec}",
            "permalink_url": f"{self.base}/{repo.full_name}/compare/{spec}",
            "diff_url": f"{self.base}/{repo.full_name}/compare/{spec}.diff",
            "patch_url": f"{self.base}/{repo.full_name}/compare/{spec}.patch",
            "base_commit": self.commit(repo, base, with_files=False),
            "merge_base_commit": self.commit(repo, merge_base, with_files=False),
            "status": status, "ahead_by": len(ahead), "behind_by": behind,
            "total_commits": len(ahead),
            "commits": [self.commit(repo, c, with_files=False) for c in ahead],
            "files": [self.diff_entry(repo, head.sha, ch)
                      for ch in repo.git.changes(merge_base.sha, head.sha)],
        })

    def content_file(self, repo: Repo, sha: str, path: str, data: bytes) -> dict:
        blob = repo.git.blob_sha(sha, path)
        api = f"{self.base}/repos/{repo.full_name}/contents/{path}?ref={sha}"
        html = f"{self.base}/{repo.full_name}/blob/{sha}/{path}"
        git = f"{self.base}/repos/{repo.full_name}/git/blobs/{blob}"
        return shaped("content-file", {
            "type": "file", "encoding": "base64", "size": len(data), "name": path.rsplit("/", 1)[-1],
            "path": path, "sha": blob, "content": base64.encodebytes(data).decode(),
            "url": api, "git_url": git, "html_url": html,
            "download_url": f"{self.base}/{repo.full_name}/raw/{sha}/{path}",
            "_links": {"self": api, "git": git, "html": html},
        })

    # -- pull requests and comments ---------------------------------------------------------

    def pull_ref(self, repo: Repo, branch: str, sha: str) -> dict:
        return {"label": f"{repo.owner}:{branch}", "ref": branch, "sha": sha,
                "user": self.user(repo.owner), "repo": self.repo(repo)}

    def pull_values(self, repo: Repo, pull: Pull) -> dict:
        api = f"{self.base}/repos/{repo.full_name}"
        html = f"{self.base}/{repo.full_name}/pull/{pull.number}"
        return {
            "id": pull.id, "node_id": node_id("PullRequest", pull.id), "number": pull.number,
            "url": f"{api}/pulls/{pull.number}", "html_url": html, "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch", "issue_url": f"{api}/issues/{pull.number}",
            "commits_url": f"{api}/pulls/{pull.number}/commits",
            "review_comments_url": f"{api}/pulls/{pull.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "state": pull.state, "locked": False, "title": pull.title, "body": pull.body,
            "user": self.user(pull.user), "labels": [], "assignee": None, "milestone": None,
            "created_at": pull.created_at, "updated_at": pull.updated_at, "closed_at": pull.closed_at,
            "merged_at": pull.merged_at, "merge_commit_sha": pull.merge_commit_sha,
            "author_association": "OWNER" if pull.user == repo.owner else "COLLABORATOR",
            "auto_merge": None, "draft": pull.draft,
            "head": self.pull_ref(repo, pull.head, pull.head_sha),
            "base": self.pull_ref(repo, pull.base, pull.base_sha),
            "_links": {name: {"href": href} for name, href in {
                "self": f"{api}/pulls/{pull.number}", "html": html,
                "issue": f"{api}/issues/{pull.number}", "comments": f"{api}/issues/{pull.number}/comments",
                "review_comments": f"{api}/pulls/{pull.number}/comments",
                "review_comment": f"{api}/pulls/comments{{/number}}",
                "commits": f"{api}/pulls/{pull.number}/commits",
                "statuses": f"{api}/statuses/{pull.head_sha}"}.items()},
        }

    def pull(self, repo: Repo, pull: Pull, mergeable: bool | None) -> dict:
        commits = len(repo.git.commits_between(pull.base_sha, pull.head_sha))
        return shaped("pull-request", {
            **self.pull_values(repo, pull), "merged": pull.merged,
            "merged_by": self.user(pull.merged_by), "mergeable": mergeable,
            "mergeable_state": "clean" if mergeable else ("dirty" if mergeable is False else "unknown"),
            "maintainer_can_modify": False, "comments": sum(
                c.issue_number == pull.number for c in repo.comments.values()),
            "review_comments": 0, "commits": commits, "additions": 0, "deletions": 0,
            "changed_files": len(repo.git.changes(pull.base_sha, pull.head_sha)),
        })

    def pull_simple(self, repo: Repo, pull: Pull) -> dict:
        return shaped("pull-request-simple", self.pull_values(repo, pull))

    def comment(self, repo: Repo, comment: Comment) -> dict:
        api = f"{self.base}/repos/{repo.full_name}"
        counts = {content: 0 for content in ("+1", "-1", "laugh", "confused", "heart", "hooray",
                                             "eyes", "rocket")}
        for _, content, _ in comment.reactions:
            counts[content] += 1
        return shaped("issue-comment", {
            "id": comment.id, "node_id": node_id("IssueComment", comment.id),
            "url": f"{api}/issues/comments/{comment.id}",
            "html_url": f"{self.base}/{repo.full_name}/pull/{comment.issue_number}#issuecomment-{comment.id}",
            "issue_url": f"{api}/issues/{comment.issue_number}", "body": comment.body,
            "user": self.user(comment.user), "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "author_association": "OWNER" if comment.user == repo.owner else "COLLABORATOR",
            "reactions": {"url": f"{api}/issues/comments/{comment.id}/reactions",
                          "total_count": len(comment.reactions), **counts},
        })

    def reaction(self, reaction_id: int, content: str, login: str) -> dict:
        return shaped("reaction", {"id": reaction_id, "node_id": node_id("Reaction", reaction_id),
                                   "user": self.user(login), "content": content,
                                   "created_at": now_iso()})

    # -- statuses, checks and deployments --------------------------------------------------

    def status(self, repo: Repo, status: Status) -> dict:
        return shaped("status", {
            "id": status.id, "node_id": node_id("StatusContext", status.id),
            "url": f"{self.base}/repos/{repo.full_name}/statuses/{status.sha}",
            "avatar_url": None, "state": status.state, "description": status.description,
            "target_url": status.target_url, "context": status.context,
            "created_at": status.created_at, "updated_at": status.created_at,
            "creator": self.user(status.creator),
        })

    def combined_status(self, repo: Repo, sha: str, latest: list[Status]) -> dict:
        states = {s.state for s in latest}
        state = ("failure" if states & {"failure", "error"} else
                 "pending" if "pending" in states or not latest else "success")
        api = f"{self.base}/repos/{repo.full_name}"
        return shaped("combined-commit-status", {
            "state": state, "sha": sha, "total_count": len(latest),
            "statuses": [shaped("simple-commit-status", {
                **self.status(repo, s), "required": False}) for s in latest],
            "repository": self.minimal_repo(repo), "commit_url": f"{api}/commits/{sha}",
            "url": f"{api}/commits/{sha}/status",
        })

    def check_run(self, repo: Repo, run: CheckRun) -> dict:
        api = f"{self.base}/repos/{repo.full_name}"
        return shaped("check-run", {
            "id": run.id, "node_id": node_id("CheckRun", run.id), "head_sha": run.head_sha,
            "name": run.name, "url": f"{api}/check-runs/{run.id}",
            "html_url": f"{self.base}/{repo.full_name}/runs/{run.id}",
            "details_url": run.details_url, "status": run.status, "conclusion": run.conclusion,
            "started_at": run.started_at, "completed_at": run.completed_at,
            "external_id": run.external_id,
            "output": {"title": run.output.get("title"), "summary": run.output.get("summary"),
                       "text": run.output.get("text"), "annotations_count": 0,
                       "annotations_url": f"{api}/check-runs/{run.id}/annotations"},
            "check_suite": {"id": run.id}, "app": None, "pull_requests": [],
        })

    def deployment(self, repo: Repo, dep: Deployment) -> dict:
        api = f"{self.base}/repos/{repo.full_name}"
        return shaped("deployment", {
            "id": dep.id, "node_id": node_id("Deployment", dep.id), "sha": dep.sha, "ref": dep.ref,
            "task": dep.task, "environment": dep.environment, "original_environment": dep.environment,
            "description": dep.description, "payload": dep.payload, "creator": self.user(dep.creator),
            "created_at": dep.created_at, "updated_at": (dep.statuses[-1].created_at
                                                         if dep.statuses else dep.created_at),
            "url": f"{api}/deployments/{dep.id}", "statuses_url": f"{api}/deployments/{dep.id}/statuses",
            "repository_url": api, "production_environment": dep.production_environment,
            "transient_environment": dep.transient_environment,
        })

    def deployment_status(self, repo: Repo, st: DeploymentStatus) -> dict:
        api = f"{self.base}/repos/{repo.full_name}"
        return shaped("deployment-status", {
            "id": st.id, "node_id": node_id("DeploymentStatus", st.id), "state": st.state,
            "creator": self.user(st.creator), "description": st.description,
            "environment": st.environment, "environment_url": st.environment_url,
            "log_url": st.log_url, "target_url": st.log_url,
            "deployment_url": f"{api}/deployments/{st.deployment_id}", "repository_url": api,
            "url": f"{api}/deployments/{st.deployment_id}/statuses/{st.id}",
            "created_at": st.created_at, "updated_at": st.created_at,
        })

    # -- the rest -----------------------------------------------------------------------------

    def permission(self, repo: Repo, login: str) -> dict:
        permission = repo.permission(login)
        flags = {"admin": permission == "admin", "maintain": permission in ("admin", "maintain"),
                 "push": permission in ("admin", "maintain", "write"),
                 "triage": permission != "none" and permission != "read",
                 "pull": permission != "none"}
        user = shaped("nullable-collaborator", {**self.user(login), "permissions": flags,
                                       "role_name": permission})
        # GitHub folds maintain into write and triage into read in this legacy field.
        legacy = {"maintain": "write", "triage": "read"}.get(permission, permission)
        return shaped("repository-collaborator-permission",
                      {"permission": legacy, "role_name": permission, "user": user})

    def rate_limit(self, reset: int) -> dict:
        bucket = {"limit": 5000, "remaining": 4999, "used": 1, "reset": reset}
        return shaped("rate-limit-overview", {
            "rate": bucket, "resources": {"core": bucket, "search": {**bucket, "limit": 30,
                                                                     "remaining": 30, "used": 0}}})


def _login_of(email: str) -> str | None:
    """Map a commit email back to a login, as GitHub does for verified noreply addresses."""
    suffix = "@users.noreply.github.com"
    if email.endswith(suffix):
        return email.removesuffix(suffix).split("+")[-1]
    return None


def person_for(login: str) -> "Person":
    from .github_git import Person

    return Person(login, f"{login}@users.noreply.github.com",
                  datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
