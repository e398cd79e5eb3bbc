"""Webhook payloads: a real example of each event, refilled with the stand-in's own objects.

Our REST objects are laid over the template only on the keys the template already has
(`_fit`), so a payload keeps the webhook shape (which differs from REST in places) with our values.
"""

from __future__ import annotations

from .github_git import ZERO_SHA
from .github_shapes import Shapes, person_for
from .github_state import CheckRun, Comment, Deployment, DeploymentStatus, Pull, Repo, now_iso
from .github_webhooks import _template, from_template

# Webhook repository objects carry these as Unix timestamps in push events; keep the template's.
_REPO_KEEP = {"created_at", "pushed_at", "updated_at"}


def _fit(template, ours):
    if isinstance(template, dict) and isinstance(ours, dict):
        return {key: (_fit(value, ours[key]) if key in ours else value)
                for key, value in template.items()}
    return ours


class Events:
    """Build the payload of each webhook the stand-in sends."""

    def __init__(self, shapes: Shapes):
        self.shapes = shapes

    def _user(self, template: dict, login: str) -> dict:
        return _fit(template, self.shapes.user(login))

    def _repo(self, template: dict, repo: Repo) -> dict:
        values = {k: v for k, v in self.shapes.repo_values(repo).items() if k not in _REPO_KEEP}
        values["master_branch"] = repo.default_branch
        fitted = _fit(template, values)
        fitted["owner"] = self._user(template["owner"], repo.owner)
        if "name" in template["owner"]:
            fitted["owner"].update(name=repo.owner, email=None)
        return fitted

    def _common(self, name: str, repo: Repo, sender: str) -> dict:
        t = _template(name)
        values = {"repository": self._repo(t["repository"], repo),
                  "sender": self._user(t["sender"], sender)}
        if "installation" in t:
            values["installation"] = {"id": 1, "node_id": t["installation"]["node_id"]}
        return values

    def push(self, repo: Repo, ref: str, before: str, after: str, pusher: str) -> dict:
        git = repo.git
        created, deleted = before == ZERO_SHA, after == ZERO_SHA
        shas = [] if deleted else (git.commits_between(before, after) if not created
                                   else _new_on_branch(repo, ref, after))
        t = _template("push")
        commits = [self._push_commit(t["commits"][0], repo, sha) for sha in shas]
        compare = (f"{self.shapes.base}/{repo.full_name}/compare/{before[:12]}...{after[:12]}"
                   if not created else f"{self.shapes.base}/{repo.full_name}/commit/{after}")
        return from_template("push", {
            **self._common("push", repo, pusher),
            "ref": ref, "before": before, "after": after, "created": created, "deleted": deleted,
            "forced": bool(not created and not deleted and git.merge_base(before, after) != before),
            "base_ref": None, "compare": compare, "commits": commits,
            "head_commit": commits[-1] if commits else (
                None if deleted else self._push_commit(t["head_commit"], repo, after)),
            "pusher": {"name": pusher, "email": person_for(pusher).email},
        })

    def _push_commit(self, template: dict, repo: Repo, sha: str) -> dict:
        info = repo.git.commit(sha)
        changes = repo.git.changes(info.parents[0] if info.parents else None, sha)
        login = info.author.email.removesuffix("@users.noreply.github.com")
        person = {"name": info.author.name, "email": info.author.email, "username": login}
        return _fit(template, {
            "id": sha, "tree_id": info.tree, "distinct": True, "message": info.message,
            "timestamp": info.committer.date,
            "url": f"{self.shapes.base}/{repo.full_name}/commit/{sha}",
            "author": person, "committer": person,
            "added": [c.path for c in changes if c.status == "added"],
            "removed": [c.path for c in changes if c.status == "removed"],
            "modified": [c.path for c in changes if c.status == "modified"],
        })

    def pull_request(self, repo: Repo, pull: Pull, action: str, sender: str) -> dict:
        name = f"pull_request.{action}"
        t = _template(name)["pull_request"]
        ours = self.shapes.pull(repo, pull, mergeable=None if pull.merged else True)
        fitted = _fit(t, {k: v for k, v in ours.items() if k not in ("head", "base")})
        for side in ("head", "base"):
            fitted[side] = _fit(t[side], {**ours[side], "repo": None})
            fitted[side]["user"] = self._user(t[side]["user"], repo.owner)
            fitted[side]["repo"] = self._repo(t[side]["repo"], repo)
        fitted["user"] = self._user(t["user"], pull.user)
        fitted["merged_by"] = self._user(t["user"], pull.merged_by) if pull.merged_by else None
        fitted.update(assignees=[], requested_reviewers=[], requested_teams=[], labels=[])
        return from_template(name, {**self._common(name, repo, sender), "action": action,
                                    "number": pull.number, "pull_request": fitted})

    def issue_comment(self, repo: Repo, pull: Pull, comment: Comment) -> dict:
        t = _template("issue_comment.created")
        ours_pull = self.shapes.pull_values(repo, pull)
        issue = _fit(t["issue"], {**ours_pull, "url": ours_pull["issue_url"],
                                  "comments": sum(c.issue_number == pull.number
                                                  for c in repo.comments.values())})
        issue.update(user=self._user(t["issue"]["user"], pull.user), labels=[], assignees=[],
                     id=pull.id, node_id=ours_pull["node_id"], pull_request={
                         "url": ours_pull["url"], "html_url": ours_pull["html_url"],
                         "diff_url": ours_pull["diff_url"], "patch_url": ours_pull["patch_url"],
                         "merged_at": pull.merged_at})
        ours_comment = self.shapes.comment(repo, comment)
        fitted = _fit(t["comment"], ours_comment)
        fitted["user"] = self._user(t["comment"]["user"], comment.user)
        return from_template("issue_comment.created", {
            **self._common("issue_comment.created", repo, comment.user), "issue": issue,
            "comment": fitted})

    def check_run(self, repo: Repo, run: CheckRun, sender: str) -> dict:
        name = "check_run.completed"
        t = _template(name)["check_run"]
        fitted = _fit(t, {k: v for k, v in self.shapes.check_run(repo, run).items()
                          if k not in ("check_suite", "app", "pull_requests", "output")})
        fitted["output"] = _fit(t["output"], {k: v for k, v in run.output.items()
                                              if k in ("title", "summary", "text")})
        fitted["external_id"] = run.external_id or ""
        fitted["details_url"] = run.details_url or fitted["html_url"]
        fitted["pull_requests"] = []
        fitted["check_suite"].update(id=run.id, head_sha=run.head_sha, after=run.head_sha,
                                     status="completed", conclusion=run.conclusion,
                                     pull_requests=[], head_branch=None, before=None,
                                     updated_at=now_iso())
        return from_template(name, {**self._common(name, repo, sender), "check_run": fitted})

    def deployment_status(self, repo: Repo, dep: Deployment, status: DeploymentStatus) -> dict:
        name = "deployment_status.created"
        t = _template(name)
        ours_dep = self.shapes.deployment(repo, dep)
        ours_status = self.shapes.deployment_status(repo, status)
        deployment = _fit(t["deployment"], ours_dep)
        deployment["creator"] = self._user(t["deployment"]["creator"], dep.creator)
        deployment_status = _fit(t["deployment_status"], ours_status)
        deployment_status["creator"] = self._user(t["deployment_status"]["creator"], status.creator)
        return from_template(name, {**self._common(name, repo, status.creator),
                                    "deployment": deployment,
                                    "deployment_status": deployment_status})


def _new_on_branch(repo: Repo, ref: str, after: str) -> list[str]:
    """Commits a new branch brings that no other branch already has (GitHub's `distinct`)."""
    others = [f"^{sha}" for name, sha in repo.git.branches().items() if f"refs/heads/{name}" != ref]
    return repo.git.out("rev-list", "--reverse", after, *others).split()
