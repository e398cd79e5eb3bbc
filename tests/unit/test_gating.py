"""The Gatekeeper fetching what the gates need, against a real store and real git repositories,
with one fake GitHub host: Depends-On in a PR body, a GitHub lookup that fails, a queued check
run without a time, and a migrations wait that says how to approve."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain import DeployRequest, GateStatus
from bot.domain.github import CiContext, PullRequest
from bot.errors import NotFoundError
from bot.gating import Gatekeeper
from tests.conftest import DEPLOY_YML, DROP_EMAIL, LocalRepo


class FakeGitHub:
    """The few GitHost reads the Gatekeeper makes, over dicts."""

    def __init__(self):
        self.pulls: dict[tuple[str, int], PullRequest] = {}
        self.contexts: dict[str, list[CiContext]] = {}

    def get_pull(self, repo: str, number: int) -> PullRequest:
        try:
            return self.pulls[(repo, number)]
        except KeyError:
            raise NotFoundError(f"pull {repo}#{number}: Not Found") from None

    def ci_contexts(self, repo: str, sha: str) -> list[CiContext]:
        return self.contexts.get(sha, [])


def pull(number: int, body: str = "", merge_commit_sha: str | None = None) -> PullRequest:
    return PullRequest(number=number, title=f"PR {number}", user_login="octocat", body=body,
                       merged=merge_commit_sha is not None, head_sha="0" * 40, html_url="",
                       state="closed" if merge_commit_sha else "open", merge_commit_sha=merge_commit_sha)


@pytest.fixture
def github(wired):
    host = FakeGitHub()
    wired.pipeline.w.gates = Gatekeeper(github=host)
    return host


def request(repo: LocalRepo, name: str, sha: str, pulls: tuple[int, ...] = ()) -> DeployRequest:
    return DeployRequest(repo=name, clone_url=repo.clone_url, ref="refs/heads/master", sha=sha, pull_numbers=pulls)


def blocked_by(wired, service: str, sha: str) -> str | None:
    [row] = wired.pipeline.status(service)
    return next(q["blocked_by"] for q in row["queue"] if q["sha"] == sha)


def gates_of(wired, service: str, sha: str) -> dict:
    deploy = next(d for d in wired.store.deploys(wired.store.service(service).id) if d.sha == sha)
    return {r.gate: r for r in wired.pipeline.gate(deploy)}


def test_depends_on_in_a_pr_body_holds_the_merge_until_that_change_is_live(tmp_path, wired, github, local_repo):
    (tmp_path / "api").mkdir()
    api = LocalRepo(tmp_path / "api", service="api", port=18082)
    api_sha = api.commit("Add /v2/prices")
    wired.pipeline.request(request(api, "acme/api", api_sha))
    github.pulls[("acme/api", 3)] = pull(3, merge_commit_sha=api_sha)
    github.pulls[("acme/web", 7)] = pull(7, body="Uses the new prices.\n\nDepends-On: acme/api#3\n")

    sha = local_repo.commit("Merge pull request #7 from octocat/prices\n\nShow new prices")
    wired.pipeline.request(request(local_repo, "acme/web", sha, pulls=(7,)))
    wired.pipeline.drive("web", "production")
    assert blocked_by(wired, "web", sha) == ("depends-on: waiting for these to be live in production first: "
                                             "acme/api#3 (merged, not live in production yet)")

    api_service = wired.store.service("api")
    wired.store.set_live(api_service.id, "production", api_sha, "127.0.0.1:5000/api:x", None, None)
    assert gates_of(wired, "web", sha)["depends-on"].reason == "dependencies live: acme/api#3"


def test_a_depends_on_github_cannot_find_waits_with_the_reason(tmp_path, wired, github, local_repo):
    (tmp_path / "api").mkdir()
    api = LocalRepo(tmp_path / "api", service="api", port=18082)
    wired.pipeline.request(request(api, "acme/api", api.commit("v1")))
    sha = local_repo.commit("Show new prices\n\nDepends-On: acme/api#99")
    wired.pipeline.request(request(local_repo, "acme/web", sha))
    wired.pipeline.drive("web", "production")  # before the fix: NotFoundError out of the driver
    assert blocked_by(wired, "web", sha) == (
        "depends-on: waiting for these to be live in production first: "
        "acme/api#99 (could not look it up on GitHub: pull acme/api#99: Not Found)")


def test_a_pr_body_that_cannot_be_read_waits_rather_than_deploying_past_it(wired, github, local_repo):
    sha = local_repo.commit("Merge pull request #8 from octocat/x\n\nx")
    wired.pipeline.request(request(local_repo, "acme/web", sha, pulls=(8,)))
    verdict = gates_of(wired, "web", sha)["depends-on"]
    assert verdict.status is GateStatus.WAIT
    assert "acme/web#8 (could not read its Depends-On lines: pull acme/web#8: Not Found)" in verdict.reason


def test_a_queued_check_run_without_a_time_is_pending_not_a_crash(wired, github, local_repo):
    local_repo.write(".github/deploy.yml",
                     DEPLOY_YML.format(service="web", port=18080) + "required_contexts: [ci/build]\n")
    sha = local_repo.commit("v1")
    github.contexts[sha] = [CiContext("ci/build", "success", datetime(2026, 3, 1, tzinfo=UTC), "status"),
                            CiContext("ci/build", "pending", None, "check_run")]  # re-run queued just now
    wired.pipeline.request(request(local_repo, "acme/web", sha))
    wired.pipeline.drive("web", "production")
    assert blocked_by(wired, "web", sha) == "ci: waiting for CI: ci/build (pending)"


def test_a_migrations_wait_says_how_to_approve_this_deploy(wired, github, local_repo):
    v1 = local_repo.commit("v1")
    [first] = wired.pipeline.request(request(local_repo, "acme/web", v1))
    service = wired.store.service("web")
    wired.store.set_live(service.id, "production", v1, "127.0.0.1:5000/web:v1", first["id"], None)
    wired.store.update_deploy(first["id"], None, state="live")
    v2 = local_repo.commit("Drop users.email", {"db/migrate/20260401000000_drop_email.rb": DROP_EMAIL})
    [view] = wired.pipeline.request(request(local_repo, "acme/web", v2))
    wired.pipeline.drive("web", "production")
    why = blocked_by(wired, "web", v2)
    assert why.startswith("migrations: waiting for approval of contract migration "
                          "db/migrate/20260401000000_drop_email.rb")
    assert why.endswith(f"; approve with `mainline approve {view['id']}` or reject with "
                        f"`mainline reject {view['id']} --reason …`")
    assert [a.status for a in wired.store.pending_approvals(view["id"])] == ["pending"]
