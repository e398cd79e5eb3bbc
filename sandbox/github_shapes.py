"""REST bodies of the stand-in, shaped by GitHub's own OpenAPI schemas (see github_schema.py):
pull requests, comments, statuses, check runs and deployments here, code in github_shapes_code.py."""

from __future__ import annotations

from datetime import UTC, datetime

from .github_git import Person
from .github_schema import node_id, shaped
from .github_shapes_code import CodeShapes
from .github_state import CheckRun, Comment, Deployment, DeploymentStatus, Pull, Repo, Status, now_iso


class Shapes(CodeShapes):
    """Build every REST body for one stand-in, whose URLs start with `base_url`."""

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


def person_for(login: str) -> Person:
    return Person(login, f"{login}@users.noreply.github.com",
                  datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
