"""The contract checks are real: a malformed request, response or webhook is caught."""

from __future__ import annotations

import requests

from sandbox.github import GitHubSandbox
from sandbox.github_contracts import ApiRequest, ApiResponse, response_errors, webhook_errors
from sandbox.github_webhooks import from_template, signature


def test_a_malformed_request_is_recorded_as_a_violation(tmp_path, caplog):
    caplog.errors_expected = True  # the violation is logged at ERROR on purpose
    sandbox = GitHubSandbox(tmp_path / "github").start()
    try:
        sandbox.create_repo("acme", "webapp", {"README.md": "x"})
        sha = sandbox.head("acme/webapp", "master")
        requests.post(f"{sandbox.url}/repos/acme/webapp/statuses/{sha}", timeout=10,
                      headers={"Authorization": "token t"}, json={"state": "green"})
    finally:
        sandbox.stop()
    assert any("request POST" in v and "green" in v for v in sandbox.violations), sandbox.violations


def test_a_malformed_response_breaks_the_openapi_contract():
    request = ApiRequest("get", "/repos/acme/webapp/pulls/1", b"", "", {}, {})
    response = ApiResponse(200, b'{"number": "one"}', "application/json", {})
    problems = response_errors(request, response)
    assert problems and "required" in " ".join(problems)


def test_a_merged_pull_request_webhook_from_the_template_validates_and_a_broken_one_does_not():
    merged = from_template("pull_request.closed", {"pull_request": {
        "merged": True, "merged_at": "2024-01-01T00:00:00Z"}})
    assert webhook_errors("pull_request$closed", merged) == []
    broken = from_template("pull_request.closed", {"pull_request": {"merged": "yes"}})
    assert webhook_errors("pull_request$closed", broken)


def test_webhook_signature_matches_githubs_documented_vector():
    assert signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
