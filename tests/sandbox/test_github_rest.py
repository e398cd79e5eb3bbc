"""The stand-in's REST API round-trips what a deploy bot writes and reads, as api.github.com does."""

from __future__ import annotations

import base64
import time

import jwt
import pytest


def test_missing_auth_is_refused_with_401(sandbox, webapp):
    import requests

    response = requests.get(f"{sandbox.url}/repos/{webapp}", timeout=10)
    assert response.status_code == 401
    assert response.json()["message"] == "Requires authentication"


def test_repository_branch_commit_contents_and_compare(api, sandbox, webapp):
    first = sandbox.head(webapp, "master")
    second = sandbox.push_commit(webapp, "master", {"VERSION": "2\n"}, "Bump version")

    repo = api.get(f"/repos/{webapp}").json()
    assert (repo["full_name"], repo["default_branch"]) == (webapp, "master")
    assert repo["clone_url"] == f"{sandbox.url}/{webapp}.git"
    assert api.get(f"/repos/{webapp}/branches/master").json()["commit"]["sha"] == second
    commit = api.get(f"/repos/{webapp}/commits/{second}").json()
    assert commit["commit"]["message"] == "Bump version"
    assert [p["sha"] for p in commit["parents"]] == [first]
    assert [f["filename"] for f in commit["files"]] == ["VERSION"]
    assert [c["sha"] for c in api.get(f"/repos/{webapp}/commits").json()] == [second, first]
    content = api.get(f"/repos/{webapp}/contents/VERSION", params={"ref": first}).json()
    assert base64.b64decode(content["content"]) == b"1\n"
    compare = api.get(f"/repos/{webapp}/compare/{first}...master").json()
    assert (compare["status"], compare["ahead_by"]) == ("ahead", 1)
    assert [c["sha"] for c in compare["commits"]] == [second]
    assert api.get(f"/repos/{webapp}/git/commits/{second}").json()["parents"][0]["sha"] == first
    assert api.get(f"/repos/{webapp}/commits/nope").status_code == 404


def test_git_refs_create_and_fast_forward_only_update(api, sandbox, webapp):
    first = sandbox.head(webapp, "master")
    created = api.post(f"/repos/{webapp}/git/refs", json={"ref": "refs/heads/revert-1", "sha": first})
    assert created.status_code == 201
    second = sandbox.push_commit(webapp, "master", {"VERSION": "2\n"}, "Bump")
    moved = api.patch(f"/repos/{webapp}/git/refs/heads/revert-1", json={"sha": second})
    assert moved.json()["object"]["sha"] == second
    backwards = api.patch(f"/repos/{webapp}/git/refs/heads/revert-1", json={"sha": first})
    assert backwards.status_code == 422
    forced = api.patch(f"/repos/{webapp}/git/refs/heads/revert-1", json={"sha": first, "force": True})
    assert forced.status_code == 200
    assert api.get(f"/repos/{webapp}/git/ref/heads/revert-1").json()["object"]["sha"] == first


def test_statuses_and_check_runs_round_trip(api, sandbox, webapp, receiver):
    sha = sandbox.head(webapp, "master")
    api.post(f"/repos/{webapp}/statuses/{sha}", json={"state": "pending", "context": "ci/build"})
    api.post(f"/repos/{webapp}/statuses/{sha}", json={"state": "success", "context": "ci/build",
                                                      "description": "built"})
    combined = api.get(f"/repos/{webapp}/commits/{sha}/status").json()
    assert combined["state"] == "success"
    assert [(s["context"], s["state"]) for s in combined["statuses"]] == [("ci/build", "success")]

    run = api.post(f"/repos/{webapp}/check-runs", json={
        "name": "mainline/gate: lock", "head_sha": sha, "status": "in_progress"}).json()
    assert run["conclusion"] is None
    done = api.patch(f"/repos/{webapp}/check-runs/{run['id']}", json={
        "conclusion": "failure", "output": {"title": "Locked", "summary": "locked by octocat"}})
    assert done.json()["status"] == "completed"
    listed = api.get(f"/repos/{webapp}/commits/{sha}/check-runs").json()
    assert [(r["name"], r["conclusion"]) for r in listed["check_runs"]] == [
        ("mainline/gate: lock", "failure")]
    sandbox.flush_webhooks()
    [hook] = receiver.events("check_run")
    assert hook["json"]["check_run"]["conclusion"] == "failure"
    assert hook["json"]["check_run"]["output"]["summary"] == "locked by octocat"


def test_deployments_and_statuses_round_trip(api, sandbox, webapp, receiver):
    sha = sandbox.head(webapp, "master")
    first = api.post(f"/repos/{webapp}/deployments", json={
        "ref": sha, "environment": "production", "required_contexts": [],
        "payload": {"service": "web"}, "description": "release 1"}).json()
    api.post(f"/repos/{webapp}/deployments/{first['id']}/statuses", json={
        "state": "success", "environment_url": "http://127.0.0.1:8080", "log_url": "http://x/1"})
    second = api.post(f"/repos/{webapp}/deployments", json={
        "ref": sha, "environment": "production", "required_contexts": []}).json()
    for state in ("queued", "in_progress", "success"):
        api.post(f"/repos/{webapp}/deployments/{second['id']}/statuses", json={"state": state})

    listed = api.get(f"/repos/{webapp}/deployments", params={"environment": "production"}).json()
    assert [d["id"] for d in listed] == [second["id"], first["id"]]
    assert listed[1]["payload"] == {"service": "web"}
    statuses = api.get(f"/repos/{webapp}/deployments/{first['id']}/statuses").json()
    assert [s["state"] for s in statuses] == ["inactive", "success"]  # newest first
    sandbox.flush_webhooks()
    states = [r["json"]["deployment_status"]["state"] for r in receiver.events("deployment_status")]
    assert states == ["success", "queued", "in_progress", "success"]


def test_deployment_is_refused_while_a_commit_status_is_red(api, sandbox, webapp):
    sha = sandbox.head(webapp, "master")
    api.post(f"/repos/{webapp}/statuses/{sha}", json={"state": "failure", "context": "ci/build"})
    refused = api.post(f"/repos/{webapp}/deployments", json={"ref": sha})
    assert refused.status_code == 409


def test_comments_edit_and_reactions_round_trip(api, sandbox, webapp, receiver):
    sandbox.create_branch(webapp, "fix", sandbox.head(webapp, "master"))
    sandbox.push_commit(webapp, "fix", {"fix.txt": "x\n"}, "Fix")
    number = sandbox.open_pull(webapp, "fix", "master", "Fix it", "", "hubot")

    made = api.post(f"/repos/{webapp}/issues/{number}/comments",
                    json={"body": "<!-- mainline -->\nqueued"}).json()
    edited = api.patch(f"/repos/{webapp}/issues/comments/{made['id']}",
                       json={"body": "<!-- mainline -->\nlive"})
    assert edited.json()["body"].endswith("live")
    first = api.post(f"/repos/{webapp}/issues/comments/{made['id']}/reactions", json={"content": "eyes"})
    again = api.post(f"/repos/{webapp}/issues/comments/{made['id']}/reactions", json={"content": "eyes"})
    assert (first.status_code, again.status_code) == (201, 200)
    [listed] = api.get(f"/repos/{webapp}/issues/{number}/comments").json()
    assert listed["body"].endswith("live") and listed["reactions"]["eyes"] == 1

    sandbox.comment(webapp, number, "/deploy staging", user="octocat")
    sandbox.flush_webhooks()
    [hook] = [r["json"] for r in receiver.events("issue_comment")
              if r["json"]["comment"]["body"] == "/deploy staging"]
    assert hook["issue"]["number"] == number and "pull_request" in hook["issue"]
    assert hook["sender"]["login"] == "octocat"


def test_pull_requests_over_rest_and_a_conflicting_merge_is_refused(api, sandbox, webapp):
    base = sandbox.head(webapp, "master")
    sandbox.create_branch(webapp, "left", base)
    sandbox.push_commit(webapp, "left", {"VERSION": "left\n"}, "Left")
    sandbox.push_commit(webapp, "master", {"VERSION": "right\n"}, "Right")

    created = api.post(f"/repos/{webapp}/pulls", json={"head": "left", "base": "master",
                                                       "title": "Left", "body": "conflicts"})
    assert created.status_code == 201
    number = created.json()["number"]
    assert api.get(f"/repos/{webapp}/pulls/{number}").json()["mergeable"] is False
    assert [p["number"] for p in api.get(f"/repos/{webapp}/pulls").json()] == [number]
    before = sandbox.head(webapp, "master")
    refused = api.put(f"/repos/{webapp}/pulls/{number}/merge", json={})
    assert refused.status_code == 405
    assert sandbox.head(webapp, "master") == before
    stale = api.put(f"/repos/{webapp}/pulls/{number}/merge", json={"sha": base})
    assert stale.status_code == 409


def test_merge_over_rest_answers_the_merge_sha(api, sandbox, webapp):
    sandbox.create_branch(webapp, "feature", sandbox.head(webapp, "master"))
    sandbox.push_commit(webapp, "feature", {"f.txt": "f\n"}, "F")
    number = sandbox.open_pull(webapp, "feature", "master", "F", "", "octocat")
    merged = api.put(f"/repos/{webapp}/pulls/{number}/merge", json={"merge_method": "merge"}).json()
    assert merged["merged"] is True and merged["sha"] == sandbox.head(webapp, "master")
    pull = api.get(f"/repos/{webapp}/pulls/{number}").json()
    assert (pull["state"], pull["merged"], pull["merge_commit_sha"]) == ("closed", True, merged["sha"])


@pytest.mark.parametrize(("login", "permission"), [("octocat", "admin"), ("hubot", "write"),
                                                   ("stranger", "none")])
def test_collaborator_permission(api, sandbox, login, permission):
    sandbox.create_repo("acme", "api", {"a": "b"}, collaborators={"octocat": "admin", "hubot": "write"})
    answer = api.get(f"/repos/acme/api/collaborators/{login}/permission").json()
    assert answer["permission"] == permission and answer["user"]["login"] == login


def test_app_installation_token_needs_a_short_lived_app_jwt(sandbox):
    import requests

    key = "the stand-in checks claims, not the signature"
    now = int(time.time())
    good = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": "12345"}, key, algorithm="HS256")
    too_long = jwt.encode({"iat": now - 60, "exp": now + 3600, "iss": "12345"}, key, algorithm="HS256")
    url = f"{sandbox.url}/app/installations/42/access_tokens"
    issued = requests.post(url, headers={"Authorization": f"Bearer {good}"}, timeout=10)
    assert issued.status_code == 201 and issued.json()["token"].startswith("ghs_")
    refused = requests.post(url, headers={"Authorization": f"Bearer {too_long}"}, timeout=10)
    assert refused.status_code == 401


def test_rate_limit_answers_without_auth(sandbox):
    import requests

    answer = requests.get(f"{sandbox.url}/rate_limit", timeout=10)
    assert answer.json()["resources"]["core"]["limit"] == 5000
    assert answer.headers["X-RateLimit-Remaining"] == "4999"


def test_fifty_calls_with_validation_on_are_all_answered_in_shape(api, sandbox, webapp):
    sha = sandbox.head(webapp, "master")
    for i in range(25):
        assert api.post(f"/repos/{webapp}/statuses/{sha}", json={"state": "success", "context": f"c{i}"}).ok
        combined = api.get(f"/repos/{webapp}/commits/{sha}/status").json()
        assert combined["state"] == "success" and len(combined["statuses"]) == i + 1
    assert sandbox.violations == []


def test_each_token_acts_as_its_user_and_the_bots_token_as_the_bot(api, sandbox, webapp):
    import requests

    sandbox.tokens["ghp_eve"] = "eve"
    assert api.get("/user").json()["login"] == "mainline[bot]"
    eve = {"Authorization": "token ghp_eve"}
    assert requests.get(f"{sandbox.url}/user", headers=eve, timeout=10).json()["login"] == "eve"
    sandbox.create_branch(webapp, "eve/x", sandbox.head(webapp, "master"))
    sandbox.push_commit(webapp, "eve/x", {"x": "x\n"}, "X", author_login="eve")
    pulled = requests.post(f"{sandbox.url}/repos/{webapp}/pulls", headers=eve, timeout=10,
                           json={"head": "eve/x", "base": "master", "title": "X"})
    assert pulled.json()["user"]["login"] == "eve"
    said = requests.post(f"{sandbox.url}/repos/{webapp}/issues/{pulled.json()['number']}/comments", headers=eve,
                         json={"body": "hi"}, timeout=10)
    assert said.json()["user"]["login"] == "eve"


def test_the_app_jwt_names_the_app_whose_bot_user_is_slug_bot(sandbox):
    import requests

    now = int(time.time())
    token = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": "12345"},
                       "the stand-in checks claims, not the signature", algorithm="HS256")
    answer = requests.get(f"{sandbox.url}/app", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["slug"] == "mainline"


def test_one_open_pull_request_per_branch_and_a_closed_one_is_not_merged(api, sandbox, webapp, receiver):
    sandbox.create_branch(webapp, "feature", sandbox.head(webapp, "master"))
    sandbox.push_commit(webapp, "feature", {"f.txt": "f\n"}, "F")
    first = api.post(f"/repos/{webapp}/pulls", json={"head": "feature", "base": "master", "title": "F"})
    again = api.post(f"/repos/{webapp}/pulls", json={"head": "feature", "base": "master", "title": "F"})
    assert first.status_code == 201 and again.status_code == 422
    assert "already exists" in again.json()["message"]
    number = first.json()["number"]
    closed = api.patch(f"/repos/{webapp}/pulls/{number}", json={"state": "closed"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed" and closed.json()["merged"] is False
    assert api.put(f"/repos/{webapp}/pulls/{number}/merge", json={}).status_code == 405
    sandbox.flush_webhooks()
    assert any(e["json"]["action"] == "closed" and e["json"]["pull_request"]["number"] == number
               for e in receiver.events("pull_request"))
