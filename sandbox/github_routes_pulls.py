"""REST routes of the stand-in for conversation: pull requests, their comments and reactions, each
answering as api.github.com does (and sending the webhooks GitHub sends)."""

from __future__ import annotations

from flask import Flask, request

from .github_api import body, caller, error, found, ok, page
from .github_state import next_id, now_iso


def register_pull_routes(app: Flask, sb) -> None:
    """Open, list, read, edit, close and merge pull requests."""
    shapes = sb.shapes

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


def register_comment_routes(app: Flask, sb) -> None:
    """Comments on a pull request (its issue) and reactions to them."""
    shapes = sb.shapes

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
        comment = found(repo.comments, comment_id)
        with sb.lock:
            comment.body, comment.updated_at = data["body"], now_iso()
        return ok(shapes.comment(repo, comment))

    @app.post("/repos/<owner>/<name>/issues/comments/<int:comment_id>/reactions")
    def create_reaction(owner, name, comment_id):
        repo, data = sb.repo(f"{owner}/{name}"), body()
        comment = found(repo.comments, comment_id)
        content = data["content"]
        with sb.lock:
            for existing_id, existing, login in comment.reactions:
                if existing == content and login == caller():
                    # GitHub answers 200 with the reaction it already has: reacting is idempotent.
                    return ok(shapes.reaction(existing_id, content, login), 200)
            reaction_id = next_id()
            comment.reactions.append((reaction_id, content, caller()))
        return ok(shapes.reaction(reaction_id, content, caller()), 201)
