"""POST /github/webhook: verify, record, queue; and what the worker makes of a recorded delivery.

Payloads are octokit's real examples (sandbox/contracts/examples, MIT, @octokit/webhooks-examples
7.6.1), with the merged case derived by setting merged/merged_at/merged_by as the corpus notes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from bot import webhook
from tests.conftest import SECRET, authed

EXAMPLES = Path(__file__).resolve().parents[2] / "sandbox" / "contracts" / "examples"
EXAMPLE_REPO = "Codertocat/Hello-World"  # the repository octokit's examples name


def github_web_url(root: Path) -> str:
    """A file:// GitHub base: `<root>/github/OWNER/NAME.git` is where the bot clones OWNER/NAME."""
    return f"file://{root}/github"


def publish(repo, settings, full_name: str = EXAMPLE_REPO) -> None:
    """Serve `repo` where the configured GitHub base says `full_name` lives (a payload's own
    clone_url is never used)."""
    path = Path(settings.github_web_base().removeprefix("file://")) / f"{full_name}.git"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.symlink_to(repo.bare)


@pytest.fixture
def settings(settings, tmp_path):
    """The shared settings, with a file:// GitHub base that `publish` serves repositories from."""
    return settings.model_copy(update={"github_web_url": github_web_url(tmp_path)})


@pytest.fixture
def local_repo(local_repo, settings):
    publish(local_repo, settings)
    return local_repo


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def post(client, event: str, payload, delivery: str | None = None, secret: str = SECRET, body: bytes | None = None):
    body = body if body is not None else json.dumps(payload).encode()
    return client.post("/github/webhook", data=body, headers={
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": webhook.sign(secret, body),
        "Content-Type": "application/json",
    })


def merged_pr(repo, sha: str, number: int = 7, base: str = "master") -> dict:
    payload = example("pull_request.closed")
    pr = payload["pull_request"]
    pr.update(number=number, merged=True, merged_at="2026-11-26T10:00:00Z", merge_commit_sha=sha,
              merged_by=dict(pr["user"]))
    pr["base"]["ref"] = base
    payload["number"] = number
    return payload


def test_githubs_documented_signature_vector_verifies():
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert webhook.verify("It's a Secret to Everybody", b"Hello, World!", header)
    assert not webhook.verify("It's a Secret to Everybody", b"Hello, World?", header)


def test_missing_or_wrong_signature_is_401_and_nothing_is_recorded(client, wired):
    body = json.dumps(example("push")).encode()
    missing = client.post("/github/webhook", data=body, headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d1"})
    wrong = post(client, "push", example("push"), delivery="d2", secret="not the secret")
    assert missing.status_code == 401 and "X-Hub-Signature-256" in missing.json["error"]
    assert wrong.status_code == 401
    assert wired.store.unprocessed_deliveries(older_than=0) == []


def test_malformed_json_is_400_with_a_reason(client):
    response = post(client, "push", None, body=b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json["error"]


def test_body_over_25_mb_is_413(client):
    body = b'{"pad": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    response = post(client, "push", None, body=body)
    assert response.status_code == 413
    assert response.is_json


def test_event_we_do_not_act_on_is_202_and_says_why(client, wired):
    response = post(client, "issues", {"action": "opened"})
    assert response.status_code == 202
    assert response.json["ignored"] == "Mainline does not act on issues.opened"
    assert wired.store.unprocessed_deliveries(older_than=0) == []


def test_repeated_delivery_is_answered_200_without_a_second_effect(client, wired, local_repo):
    payload = merged_pr(local_repo, local_repo.commit("Merge pull request #7 from octocat/feature"))
    first = post(client, "pull_request", payload, delivery="same-delivery")
    again = post(client, "pull_request", payload, delivery="same-delivery")
    assert first.status_code == 202 and first.json == {"queued": "same-delivery"}
    assert again.status_code == 200 and again.json == {"duplicate": "same-delivery"}
    assert wired.store.unprocessed_deliveries(older_than=0) == ["same-delivery"]


def test_merged_pull_request_becomes_one_queued_deploy_per_environment(client, wired, local_repo):
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-merge")
    wired.process_delivery("d-merge")
    wired.process_delivery("d-merge")  # a redelivered task has no second effect
    deploys = wired.pipeline.deploys("web")
    assert [(d["environment"], d["sha"], d["state"], d["pull_numbers"]) for d in deploys] == [
        ("production", sha, "queued", [7])]
    assert wired.store.delivery("d-merge").outcome.startswith("1 deploy(s) for #7")


def test_closed_without_merge_is_recorded_and_deploys_nothing(client, wired, local_repo):
    payload = merged_pr(local_repo, local_repo.commit("wip"))
    payload["pull_request"]["merged"] = False
    post(client, "pull_request", payload, delivery="d-closed")
    wired.process_delivery("d-closed")
    assert wired.store.services() == []
    assert "closed without merging" in wired.store.delivery("d-closed").outcome


def test_push_to_production_branch_and_to_feature_branch(client, wired, local_repo):
    sha = local_repo.commit("Add a page (#12)")
    push = example("push")
    push.update(ref="refs/heads/master", before="0" * 39 + "1", after=sha, deleted=False,
                commits=[{**push["commits"][0], "id": sha, "message": "Add a page (#12)"}] if push["commits"] else [])
    post(client, "push", push, delivery="d-push")
    wired.process_delivery("d-push")
    feature = local_repo.commit("try a thing", branch="feature/thing")
    push.update(ref="refs/heads/feature/thing", after=feature, commits=[])
    post(client, "push", push, delivery="d-feature")
    wired.process_delivery("d-feature")
    deploys = {(d["environment"], d["sha"]) for d in wired.pipeline.deploys("web")}
    assert deploys == {("production", sha), ("staging", feature)}


def test_invalid_repo_config_deploys_nothing_and_says_which_line(client, wired, local_repo, caplog):
    sha = local_repo.commit("break config", {".github/deploy.yml": "service: web\nenvironments:\n  production:\n"
                                                                 "    replicas: many\n"})
    post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-bad")
    wired.process_delivery("d-bad")
    assert wired.store.services() == []
    assert any("line 4" in r.getMessage() and "replicas" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("path", ["/api/deploys", "/api/deploys?service=nope", "/api/deploys?service=x&limit=z"])
def test_api_errors_are_json_4xx(reader, path):
    response = reader.get(path)
    assert 400 <= response.status_code < 500
    assert "error" in response.json


def test_api_services_lists_live_head_sync_lock_and_queue(client, wired, local_repo):
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-svc")
    wired.process_delivery("d-svc")
    wired.pipeline.lock("web", "production", "octocat", "incident 42")
    [row] = authed(client, wired).get("/api/services").json
    assert {k: row[k] for k in ("service", "environment", "repo", "live", "head", "in_sync", "locked", "queue")} == {
        "service": "web", "environment": "production", "repo": "Codertocat/Hello-World", "live": None,
        "head": sha, "in_sync": False, "locked": {"by": "octocat", "reason": "incident 42"},
        "queue": [{"sha": sha, "state": "queued", "blocked_by": None}]}


def test_a_pushed_branch_cannot_make_its_author_a_deployer(wired, local_repo):
    from bot.domain import DeployRequest
    from bot.errors import AuthError

    base = local_repo.work / ".github" / "deploy.yml"
    merged = base.read_text().replace("    auto_deploy: true\n", '    auto_deploy: true\n    deployers: ["slack:U1"]\n')
    sha = local_repo.commit("deployers", {".github/deploy.yml": merged})
    wired.pipeline.request(DeployRequest("acme/web", local_repo.clone_url, "refs/heads/master", sha))
    sneaky = merged.replace('["slack:U1"]', '["slack:U1", "slack:U2"]')
    branch_sha = local_repo.commit("let me in", {".github/deploy.yml": sneaky}, branch="feature/me")
    wired.pipeline.request(DeployRequest("acme/web", local_repo.clone_url, "refs/heads/feature/me", branch_sha))
    wired.pipeline.authorise("web", "production", "slack:U1")
    with pytest.raises(AuthError):
        wired.pipeline.authorise("web", "production", "slack:U2")


def test_dashboard_and_metrics_show_what_happened(client, wired, local_repo):
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-dash")
    post(client, "issues", {"action": "opened"})
    wired.process_delivery("d-dash")
    wired.pipeline.lock("web", "production", "octocat", "incident 42")
    page = authed(client, wired).get("/").get_data(as_text=True)
    assert "web · production" in page and "locked by octocat: incident 42" in page and sha[:12] in page
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'mainline_webhooks_total{event="pull_request",outcome="queued"} 1.0' in metrics
    assert 'mainline_webhooks_total{event="issues",outcome="ignored"} 1.0' in metrics
