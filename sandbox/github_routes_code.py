"""REST routes of the stand-in for code: the repository, branches, commits, contents and the git
database (refs and commits), each answering as api.github.com does."""

from __future__ import annotations

from flask import Flask, request

from .github_api import body, caller, commit_or_404, error, ok, page


def register_code_routes(app: Flask, sb) -> None:
    """Routes that read the repository's code, and the ref writes of the git database."""
    shapes = sb.shapes

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


def register_git_database_routes(app: Flask, sb) -> None:
    """Refs and commits of the git database; a ref moved here sends `push`, as on GitHub."""
    shapes = sb.shapes

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
