"""What a user sees on GitHub while Mainline deploys, rolls back and reverts, driven through the
local GitHub stand-in with its OpenAPI validation on."""

from __future__ import annotations

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.infra.github.client import GitHubAdapter, GitHubConfig
from bot.infra.github.revert import PullRequestReverter, RevertRequest
from bot.notify.github_reporter import GitHubReporter, comment_marker
from bot.ports import DeployNotice
from sandbox.github import GitHubSandbox

REPO = "acme/webapp"
GOOD = {"app.txt": "version 1\n", "README.md": "webapp\n"}


@pytest.fixture
def sandbox(tmp_path):
    sb = GitHubSandbox(tmp_path / "github", validate=True).start()
    sb.create_repo("acme", "webapp", GOOD)
    yield sb
    sb.stop()
    assert sb.violations == []


@pytest.fixture
def host(sandbox):
    return GitHubAdapter(GitHubConfig(base_url=sandbox.url, token="ghp_sandbox", write_interval=0))


def merge_pr(sb: GitHubSandbox, branch: str, files: dict, title: str) -> tuple[int, str]:
    sb.create_branch(REPO, branch, sb.head(REPO, "master"))
    sb.push_commit(REPO, branch, files, title)
    number = sb.open_pull(REPO, branch, "master", title)
    return number, sb.merge_pull(REPO, number)


def api(sb: GitHubSandbox, path: str):
    """What anyone reading the repository through the API sees."""
    response = requests.get(f"{sb.url}/repos/{REPO}{path}", headers={"Authorization": "token reader"}, timeout=10)
    response.raise_for_status()
    return response.json()


def notice(sha: str, state: str, pulls: tuple[int, ...], message: str = "", **data) -> DeployNotice:
    return DeployNotice(deploy_id=7, service="web", environment="production", repo=REPO, sha=sha, state=state,
                        message=message, pull_numbers=pulls, data=data)


def gate(sha: str, name: str, status: str, reason: str = "") -> DeployNotice:
    return DeployNotice(deploy_id=7, service="web", environment="production", repo=REPO, sha=sha,
                        state="gating", message="", kind="gate",
                        data={"gate": name, "status": status, "reason": reason})


def marked_comments(sb: GitHubSandbox, number: int) -> list[dict]:
    marker = comment_marker("web", "production")
    return [c for c in api(sb, f"/issues/{number}/comments") if marker in c["body"]]


def test_a_good_deploy_shows_live_on_the_pr_deployment_and_checks(sandbox, host):
    number, sha = merge_pr(sandbox, "health", {"app.txt": "version 2\n"}, "Add a health page")
    reporter = GitHubReporter(host, dashboard_url="http://127.0.0.1:8000")
    pulls = (number,)

    reporter.notify(notice(sha, "queued", pulls, f"Queued by the merge of #{number}"))
    first = marked_comments(sandbox, number)
    assert len(first) == 1 and "Queued for production" in first[0]["body"]

    reporter.notify(gate(sha, "lock", "wait", "web is locked by octocat: database maintenance"))
    reporter.notify(gate(sha, "lock", "pass"))
    reporter.notify(gate(sha, "ci_contexts", "pass", "ci/build is green"))
    for state in ("gating", "building", "rolling_out", "verifying"):
        reporter.notify(notice(sha, state, pulls, f"now {state}"))
    reporter.notify(notice(sha, "live", pulls, "web is live in production",
                           environment_url="http://127.0.0.1:8080"))
    reporter.notify(notice(sha, "live", pulls, "web is live in production",
                           environment_url="http://127.0.0.1:8080"))  # told twice, shown once

    comments = marked_comments(sandbox, number)
    assert [c["id"] for c in comments] == [first[0]["id"]]  # the same comment, edited in place
    body = comments[0]["body"]
    assert "✅ Live in production" in body
    assert "verifying ✔ → live ✔" in body
    assert "[environment](http://127.0.0.1:8080)" in body

    deployments = api(sandbox, f"/deployments?sha={sha}&environment=production")
    assert len(deployments) == 1
    statuses = api(sandbox, f"/deployments/{deployments[0]['id']}/statuses")
    assert [s["state"] for s in statuses][::-1] == ["queued"] + ["in_progress"] * 4 + ["success"]
    assert statuses[0]["environment_url"] == "http://127.0.0.1:8080"
    assert statuses[0]["log_url"] == "http://127.0.0.1:8000/deploys/7"  # the deploy's page, not JSON
    assert "[deploy log](http://127.0.0.1:8000/deploys/7)" in body

    runs = {r["name"]: r for r in api(sandbox, f"/commits/{sha}/check-runs")["check_runs"]}
    assert set(runs) == {"mainline/lock", "mainline/ci_contexts"}
    assert (runs["mainline/lock"]["status"], runs["mainline/lock"]["conclusion"]) == ("completed", "success")
    assert runs["mainline/ci_contexts"]["output"]["title"] == "Passed: ci/build is green"
    # Our gate reports are not CI: the CI-contexts gate must not wait on itself.
    assert host.ci_contexts(REPO, sha) == []


def test_a_blocked_gate_says_why_on_the_sha(sandbox, host):
    _number, sha = merge_pr(sandbox, "late", {"app.txt": "version 2\n"}, "Late change")
    GitHubReporter(host).notify(gate(sha, "window", "block", "outside the deploy window (mon-fri 09:00-17:00)"))
    run = api(sandbox, f"/commits/{sha}/check-runs")["check_runs"][0]
    assert (run["name"], run["conclusion"]) == ("mainline/window", "failure")
    assert "outside the deploy window" in run["output"]["summary"]


def test_a_rolled_back_release_tells_every_pr_with_the_evidence(sandbox, host):
    first, _ = merge_pr(sandbox, "cache", {"cache.txt": "on\n"}, "Add a cache")
    second, sha = merge_pr(sandbox, "broken", {"app.txt": "version 2\n"}, "Break the health page")
    reporter = GitHubReporter(host)
    pulls = (first, second)
    evidence = {"reason": "health probe failed 3 times in a row", "error_rate": 0.125, "errors_5xx": 5,
                "requests": 40, "max_error_rate": 0.01, "probe_output": "HTTP/1.0 500 Internal Server Error"}
    reporter.notify(notice(sha, "verifying", pulls))
    reporter.notify(notice(sha, "rolling_back", pulls, "verification failed", **evidence))
    reporter.notify(notice(sha, "rolled_back", pulls, "production serves the previous release again", **evidence))
    reporter.notify(notice(sha, "reverted", pulls, "reverted on master", revert_pull=9, **evidence))

    for number in pulls:
        comments = marked_comments(sandbox, number)
        assert len(comments) == 1
        body = comments[0]["body"]
        assert "Rolled back in production and reverted" in body
        assert "health probe failed 3 times in a row" in body
        assert "12.5% (5 of 40 requests answered 5xx), limit 1.0%" in body
        assert "HTTP/1.0 500 Internal Server Error" in body
        assert "#9" in body
    deployment = api(sandbox, f"/deployments?sha={sha}")[0]
    assert api(sandbox, f"/deployments/{deployment['id']}/statuses")[0]["state"] == "failure"


def test_prs_of_a_release_are_found_from_its_merge_commit(sandbox, host):
    number, sha = merge_pr(sandbox, "docs", {"README.md": "webapp, documented\n"}, "Document the app")
    assert [p.number for p in host.pulls_for_commit(REPO, sha)] == [number]
    GitHubReporter(host).notify(notice(sha, "queued", ()))
    assert len(marked_comments(sandbox, number)) == 1


def tree(sb: GitHubSandbox, ref: str) -> str:
    return sb.repo(REPO).git.out("rev-parse", f"{ref}^{{tree}}")


def test_a_bad_release_is_reverted_by_a_merged_pull_request(sandbox, host, tmp_path):
    good = sandbox.head(REPO, "master")
    first, first_sha = merge_pr(sandbox, "cache", {"cache.txt": "on\n"}, "Add a cache")
    second, second_sha = merge_pr(sandbox, "broken", {"app.txt": "version 2\n"}, "Break the health page")
    request = RevertRequest(REPO, "master", (second_sha, first_sha), (first, second),
                            reason="health probe failed 3 times in a row",
                            evidence="Error rate 12.5% (5 of 40 requests)")
    reverter = PullRequestReverter(host, workdir=tmp_path)

    outcome = reverter.revert(request)

    assert not outcome.conflicted
    assert outcome.reverted == (second_sha, first_sha)
    assert outcome.sha == sandbox.head(REPO, "master")
    revert = api(sandbox, f"/pulls/{outcome.pull_number}")
    assert revert["title"] == 'Revert "Break the health page"'
    assert revert["merged"] is True and revert["head"]["ref"] == f"mainline/revert-{second_sha[:12]}"
    assert f"Reverts {REPO}#{first}" in revert["body"] and f"Reverts {REPO}#{second}" in revert["body"]
    assert tree(sandbox, "master") == tree(sandbox, good)  # the branch is back to the good tree
    for number in (first, second):
        told = [c["body"] for c in api(sandbox, f"/issues/{number}/comments")]
        assert len(told) == 1
        assert f"reverted by #{outcome.pull_number}" in told[0]
        assert "health probe failed 3 times in a row" in told[0] and "Error rate 12.5%" in told[0]

    again = reverter.revert(request)
    assert again.sha == outcome.sha and again.pull_number == outcome.pull_number
    assert len(api(sandbox, "/pulls?state=all")) == 3
    assert all(len(api(sandbox, f"/issues/{n}/comments")) == 1 for n in (first, second))


def test_a_revert_already_on_the_branch_is_not_made_twice(sandbox, host, tmp_path):
    number, sha = merge_pr(sandbox, "broken", {"app.txt": "version 2\n"}, "Break the health page")
    sandbox.push_commit(REPO, "master", {"app.txt": "version 1\n"},
                        f'Revert "Break the health page"\n\nThis reverts commit {sha}.')
    head = sandbox.head(REPO, "master")
    outcome = PullRequestReverter(host, workdir=tmp_path).revert(RevertRequest(REPO, "master", (sha,), (number,)))
    assert outcome.sha is None and outcome.reverted == (sha,)
    assert sandbox.head(REPO, "master") == head
    assert len(api(sandbox, "/pulls?state=all")) == 1


def test_a_conflicting_revert_opens_a_pull_request_for_a_person(sandbox, host, tmp_path):
    number, sha = merge_pr(sandbox, "broken", {"app.txt": "version 2\n"}, "Break the health page")
    sandbox.push_commit(REPO, "master", {"app.txt": "version 3\n"}, "Hotfix straight on master")
    head = sandbox.head(REPO, "master")
    request = RevertRequest(REPO, "master", (sha,), (number,), reason="error rate 40% over 30 s")
    reverter = PullRequestReverter(host, workdir=tmp_path)

    outcome = reverter.revert(request)

    assert outcome.conflicted and outcome.conflict_files == ("app.txt",)
    assert outcome.sha is None
    assert sandbox.head(REPO, "master") == head  # nothing half-done reached the branch
    pull = api(sandbox, f"/pulls/{outcome.pull_number}")
    assert pull["title"] == 'Revert "Break the health page"'
    assert pull["state"] == "open" and pull["merged"] is False
    assert "- `app.txt`" in pull["body"] and "A person must finish this revert" in pull["body"]
    told = api(sandbox, f"/issues/{number}/comments")[0]["body"]
    assert "could not revert" in told and "`app.txt`" in told and f"#{outcome.pull_number}" in told

    again = reverter.revert(request)
    assert again == outcome
    assert len(api(sandbox, "/pulls?state=all")) == 2


def test_a_github_app_reads_and_writes_with_an_installation_token(sandbox, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    app = GitHubAdapter(GitHubConfig(base_url=sandbox.url, app_id="4242", private_key=key, installation_id=1,
                                     write_interval=0))
    number, _sha = merge_pr(sandbox, "docs", {"README.md": "webapp, documented\n"}, "Document the app")
    assert app.get_pull(REPO, number).merged is True
    app.upsert_comment(REPO, number, "<!-- mainline:test -->", "hello from the app")
    assert app.git_remote(REPO).password.startswith("ghs_")
    comments = api(sandbox, f"/issues/{number}/comments")
    assert [c["body"] for c in comments] == ["<!-- mainline:test -->\nhello from the app"]


def test_a_direct_push_is_reverted_under_its_own_subject(sandbox, host, tmp_path):
    good = sandbox.head(REPO, "master")
    sha = sandbox.push_commit(REPO, "master", {"app.txt": "version 2\n"}, "Bump the version string")
    outcome = PullRequestReverter(host, workdir=tmp_path).revert(RevertRequest(REPO, "master", (sha,)))
    assert api(sandbox, f"/pulls/{outcome.pull_number}")["title"] == 'Revert "Bump the version string"'
    assert tree(sandbox, "master") == tree(sandbox, good)


class CrashBeforeMerge:
    """The bot's host, killed as it was about to merge."""

    def __init__(self, host):
        self._host = host

    def __getattr__(self, name):
        return getattr(self._host, name)

    def merge_pull(self, *args, **kwargs):
        raise KeyboardInterrupt("killed before the merge")


def test_a_revert_pull_request_left_open_by_a_crash_is_merged_not_duplicated(sandbox, host, tmp_path):
    good = sandbox.head(REPO, "master")
    number, sha = merge_pr(sandbox, "broken", {"app.txt": "version 2\n"}, "Break the health page")
    request = RevertRequest(REPO, "master", (sha,), (number,))
    with pytest.raises(KeyboardInterrupt):
        PullRequestReverter(CrashBeforeMerge(host), workdir=tmp_path).revert(request)
    left_open = next(p["number"] for p in api(sandbox, "/pulls?state=open"))
    pushed = sandbox.head(REPO, f"mainline/revert-{sha[:12]}")

    outcome = PullRequestReverter(host, workdir=tmp_path).revert(request)

    assert outcome.pull_number == left_open and outcome.sha == sandbox.head(REPO, "master")
    merged = api(sandbox, f"/pulls/{left_open}")
    assert merged["merged"] is True and merged["head"]["sha"] == pushed  # its own branch, reused as it was
    assert len(api(sandbox, "/pulls?state=all")) == 2
    assert tree(sandbox, "master") == tree(sandbox, good)
