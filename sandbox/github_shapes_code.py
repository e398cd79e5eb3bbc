"""REST bodies of the stand-in for people, repositories and code (commits, refs, contents)."""

from __future__ import annotations

import base64

from .github_git import CommitInfo, FileChange, Person
from .github_schema import node_id, shaped
from .github_state import Repo, user_id


class CodeShapes:
    """Build REST bodies about people, repositories and code for a stand-in at `base_url`."""

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
            "full_name": repo.full_name, "owner": self.user(repo.owner), "private": repo.private,
            "fork": False, "default_branch": repo.default_branch, "visibility": "private" if repo.private else "public",
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

    def git_person(self, person: Person) -> dict:
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

    def diff_entry(self, repo: Repo, sha: str, change: FileChange) -> dict:
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

    # -- the rest -----------------------------------------------------------------------------

    def permission(self, repo: Repo, login: str) -> dict:
        permission = repo.permission(login)
        flags = {"admin": permission == "admin", "maintain": permission in ("admin", "maintain"),
                 "push": permission in ("admin", "maintain", "write"),
                 "triage": permission != "none" and permission != "read",
                 "pull": permission != "none"}
        user = shaped("nullable-collaborator", {**(self.user(login) or {}), "permissions": flags,
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
