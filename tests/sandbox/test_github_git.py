"""The stand-in hosts real git: clone and push over smart HTTP, real merge commits."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
from pathlib import Path

from tests.sandbox.conftest import SECRET

GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "octocat",
           "GIT_AUTHOR_EMAIL": "octocat@users.noreply.github.com",
           "GIT_COMMITTER_NAME": "octocat", "GIT_COMMITTER_EMAIL": "octocat@users.noreply.github.com"}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True,
                          check=True)
    return proc.stdout.strip()


def test_clone_and_push_over_smart_http_send_a_signed_push_webhook(sandbox, webapp, receiver,
                                                                     tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", f"{sandbox.url}/{webapp}.git", str(clone))
    assert (clone / "VERSION").read_text() == "1\n"

    (clone / "VERSION").write_text("2\n")
    git(clone, "commit", "-qam", "Bump version to 2")
    pushed = git(clone, "rev-parse", "HEAD")
    git(clone, "push", "-q", "origin", "master")
    sandbox.flush_webhooks()

    assert sandbox.head(webapp, "master") == pushed
    [push] = receiver.events("push")
    assert hmac.compare_digest(
        push["headers"]["X-Hub-Signature-256"],
        "sha256=" + hmac.new(SECRET.encode(), push["raw"], hashlib.sha256).hexdigest())
    assert push["headers"]["X-GitHub-Delivery"]
    payload = push["json"]
    assert payload["ref"] == "refs/heads/master"
    assert payload["after"] == pushed
    assert payload["repository"]["full_name"] == webapp
    assert payload["repository"]["clone_url"] == f"{sandbox.url}/{webapp}.git"
    assert [c["message"] for c in payload["commits"]] == ["Bump version to 2"]
    assert payload["commits"][0]["modified"] == ["VERSION"]


def test_fetch_sees_commits_pushed_through_the_helper(sandbox, webapp, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", f"{sandbox.url}/{webapp}.git", str(clone))
    sha = sandbox.push_commit(webapp, "master", {"app.py": "print('hi')\n"}, "Add app")
    git(clone, "fetch", "-q", "origin")
    assert git(clone, "rev-parse", "origin/master") == sha
    assert git(clone, "show", f"{sha}:app.py") == "print('hi')"


def test_merging_a_pull_request_makes_a_real_merge_commit_and_a_merged_webhook(
        sandbox, webapp, receiver, tmp_path):
    base = sandbox.head(webapp, "master")
    sandbox.create_branch(webapp, "feature", base)
    feature = sandbox.push_commit(webapp, "feature", {"feature.txt": "new\n"}, "Add feature")
    moved = sandbox.push_commit(webapp, "master", {"VERSION": "2\n"}, "Bump version")
    number = sandbox.open_pull(webapp, "feature", "master", "Add feature", "Adds it", "hubot")

    merge = sandbox.merge_pull(webapp, number, merged_by="octocat")
    sandbox.flush_webhooks()

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", f"{sandbox.url}/{webapp}.git", str(clone))
    assert git(clone, "rev-parse", "HEAD") == merge
    assert git(clone, "log", "-1", "--format=%P", merge).split() == [moved, feature]
    assert (clone / "feature.txt").read_text() == "new\n"
    assert (clone / "VERSION").read_text() == "2\n"

    [closed] = [r["json"] for r in receiver.events("pull_request") if r["json"]["action"] == "closed"]
    pr = closed["pull_request"]
    assert pr["merged"] is True and pr["merged_at"]
    assert pr["merged_by"]["login"] == "octocat"
    assert pr["merge_commit_sha"] == merge
    assert (pr["head"]["ref"], pr["head"]["sha"]) == ("feature", feature)
    assert pr["base"]["ref"] == "master"
    assert pr["title"] == "Add feature" and pr["user"]["login"] == "hubot"
    pushes = [r["json"] for r in receiver.events("push") if r["json"]["after"] == merge]
    assert len(pushes) == 1 and pushes[0]["before"] == moved
