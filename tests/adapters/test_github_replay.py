"""The GitHub adapter on recorded real GitHub responses, and its one retry policy.

The cassettes are PyGithub's ReplayData (real api.github.com traffic, LGPL-3.0, see
tests/fixtures/github_cassettes/NOTICE) converted by convert.py. Each test calls the adapter's own
method and checks that our dataclass carries what GitHub answered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import vcr
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.domain.github import CheckRunReport, CommitStatus, DeploymentStatusReport, NewPull
from bot.errors import AuthError, NotFoundError, TransientError
from bot.infra.github.client import (
    GitHubAdapter,
    GitHubConfig,
    GitHubRequestError,
    WriteSpacer,
    app_jwt,
)
from bot.retry import RetryAfter

CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "github_cassettes"


# -- replay ---------------------------------------------------------------------------------

@pytest.fixture
def replay():
    """Play one cassette; hand back the adapter and the requests it sent."""
    sent: list = []

    def capture(live, recorded):
        # vcrpy asks once per recorded candidate; keep each live request once.
        if not any((r.method, r.uri, r.body) == (live.method, live.uri, live.body) for r in sent):
            sent.append(live)
        return True

    player = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path", "query", "capture"],
    )
    player.register_matcher("capture", capture)
    adapter = GitHubAdapter(GitHubConfig(token="recorded", write_interval=0))

    def play(name: str):
        return player.use_cassette(f"{name}.yaml", allow_playback_repeats=False)

    return adapter, play, sent


def _body(request) -> dict:
    return json.loads(request.body)


def test_create_status_returns_the_recorded_status(replay):
    adapter, play, sent = replay
    with play("Commit.testCreateStatusWithAllParameters"):
        status = adapter.create_status(
            "jacquev6/PyGithub", "1292bf0e22c796e91cc3d6e24b544aece8c21f2a",
            CommitStatus(context="mainline/deploy", state="success",
                         description="Status successfully created by PyGithub",
                         target_url="https://github.com/jacquev6/PyGithub/issues/67"))
    assert status.state == "success"
    assert status.description == "Status successfully created by PyGithub"
    assert status.target_url == "https://github.com/jacquev6/PyGithub/issues/67"
    assert status.updated_at == datetime(2012, 9, 8, 11, 30, 56, tzinfo=UTC)
    assert _body(sent[-1])["context"] == "mainline/deploy"


def test_create_deployment_returns_the_recorded_deployment(replay):
    adapter, play, sent = replay
    with play("Repository.testCreateDeployment"):
        deployment = adapter.create_deployment(
            "PyGithub/PyGithub", "743f5a58b0bce91c4eab744ff7e39dfca9e6e8a5", "test", "Test deployment")
    assert deployment.id == 263877258
    assert deployment.sha == "743f5a58b0bce91c4eab744ff7e39dfca9e6e8a5"
    assert deployment.environment == "test"
    assert deployment.description == "Test deployment"
    request = _body(sent[-1])
    # Our own gates decided already: GitHub must neither merge nor wait for contexts.
    assert request["auto_merge"] is False and request["required_contexts"] == []
    assert request["ref"] == "743f5a58b0bce91c4eab744ff7e39dfca9e6e8a5"


def test_create_deployment_status_returns_the_recorded_status(replay):
    adapter, play, sent = replay
    with play("DeploymentStatus.testCreate"):
        status = adapter.create_deployment_status(
            "jacquev6/PyGithub", 263877258,
            DeploymentStatusReport("queued", "Deployment queued", environment_url="https://example.com/environment",
                                   log_url="https://example.com/deployment.log"))
    assert status.id == 388454671
    assert status.state == "queued"
    assert status.description == "Deployment queued"
    assert status.environment == "test"
    assert status.log_url == "https://example.com/deployment.log"
    assert status.created_at == datetime(2020, 8, 26, 14, 32, 51, tzinfo=UTC)
    request = _body(sent[-1])
    assert request["log_url"] == "https://example.com/deployment.log"
    assert request["environment_url"] == "https://example.com/environment"


def test_compare_lists_the_recorded_commits(replay):
    adapter, play, _ = replay
    with play("Repository.testCompare"):
        comparison = adapter.compare("PyGithub/PyGithub", "v0.6", "v0.7")
    assert (comparison.status, comparison.ahead_by, comparison.behind_by) == ("ahead", 4, 0)
    assert comparison.commits == (
        "5bb654d26dd014d36794acd1e6ecf3736f12aad7",
        "cb0313157bf904f2d364377d35d9397b269547a5",
        "0cec0d25e606c023a62a4fc7cdc815309ebf6d16",
        "ecda065e01876209d2bdf5fe4e91cee8ffaa9ff7",
    )


def test_create_check_run_returns_the_recorded_run(replay):
    adapter, play, sent = replay
    with play("CheckRun.testCreateCheckRunCompleted"):
        run = adapter.create_check_run("dhruvmanila/pygithub-testing", CheckRunReport(
            name="completed_check_run", head_sha="0283d46537193f1fed7d46859f15c5304b9836f9",
            status="completed", conclusion="success", title="Readme report",
            summary="There are 0 failures, 2 warnings, and 1 notices."))
    assert run.id == 1296027873
    assert (run.name, run.status, run.conclusion) == ("completed_check_run", "completed", "success")
    assert run.title == "Readme report"
    assert run.summary == "There are 0 failures, 2 warnings, and 1 notices."
    assert run.html_url == "https://github.com/dhruvmanila/pygithub-testing/runs/1296027873"
    assert _body(sent[-1])["output"]["title"] == "Readme report"


def test_create_issue_comment_returns_the_recorded_comment(replay):
    adapter, play, _ = replay
    with play("PullRequest.testCreateIssueComment"):
        comment = adapter.create_comment("PyGithub/PyGithub", 31, "Issue comment created by PyGithub")
    assert comment.id == 8387331
    assert comment.body == "Issue comment created by PyGithub"
    assert comment.user_login == "jacquev6"


def test_create_pull_returns_the_recorded_pull(replay):
    adapter, play, sent = replay
    with play("Repository.testCreatePull"):
        pull = adapter.create_pull("PyGithub/PyGithub", NewPull(
            title="Pull request created by PyGithub", head="BeaverSoftware:master",
            base="topic/RewriteWithGeneratedCode", body="Body of the pull request"))
    assert pull.number == 31
    assert pull.title == "Pull request created by PyGithub"
    assert pull.user_login == "jacquev6"
    assert pull.head_sha == "8a4f306d4b223682dd19410d4a9150636ebe4206"
    assert pull.html_url == "https://github.com/PyGithub/PyGithub/pull/31"
    assert pull.merged is False and pull.state == "open"
    assert _body(sent[-1])["base"] == "topic/RewriteWithGeneratedCode"


def test_merge_pull_returns_the_recorded_merge(replay):
    adapter, play, sent = replay
    with play("PullRequest.testMerge") as cassette:
        result = adapter.merge_pull("PyGithub/PyGithub", 31)
    assert result.merged is True
    assert result.sha == "688208b1a5a074871d0e9376119556897439697d"
    assert result.message == "Pull Request successfully merged"
    assert cassette.play_count == 1 and sent[-1].method == "PUT"


# -- the retry policy, against a scripted server on 127.0.0.1 ------------------------------

PULL = {
    "number": 1, "title": "Add a health page", "body": "", "state": "open", "draft": False,
    "user": {"login": "octocat"}, "html_url": "http://127.0.0.1/acme/webapp/pull/1", "merged_at": None,
    "merge_commit_sha": None, "head": {"sha": "a" * 40, "ref": "feature"}, "base": {"sha": "b" * 40, "ref": "master"},
}


class ScriptedGitHub:
    """Answers each request with the next scripted (status, headers, body), then 200 PULL."""

    def __init__(self):
        self.script: list[tuple[int, dict, object]] = []
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.handlers: dict[tuple[str, str], object] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append((self.command, self.path, dict(self.headers), body))
                route = owner.handlers.get((self.command, self.path.split("?")[0]))
                if route is not None:
                    status, headers, payload = route(dict(self.headers), body)
                elif owner.script:
                    status, headers, payload = owner.script.pop(0)
                else:
                    status, headers, payload = 200, {}, PULL
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    server = ScriptedGitHub()
    yield server
    server.close()


@pytest.fixture
def waits():
    return []


@pytest.fixture
def adapter(scripted, waits):
    return GitHubAdapter(GitHubConfig(base_url=scripted.url, token="t0ken", write_interval=0, attempts=4),
                         sleep=waits.append)


def test_server_error_is_retried_then_succeeds_with_a_log_line(adapter, scripted, waits, caplog):
    scripted.script = [(502, {}, {"message": "Bad Gateway"})]
    with caplog.at_level(logging.WARNING, logger="mainline.retry"):
        pull = adapter.get_pull("acme/webapp", 1)
    assert pull.title == "Add a health page"
    assert waits == [1.0]
    assert len(scripted.requests) == 2
    assert any("attempt 1 failed" in r.getMessage() and "502" in r.getMessage() for r in caplog.records)


def test_too_many_requests_waits_as_long_as_retry_after_says(adapter, scripted, waits):
    scripted.script = [(429, {"Retry-After": "7"}, {"message": "Too Many Requests"})]
    assert adapter.get_pull("acme/webapp", 1).number == 1
    assert waits == [7.0]


def test_secondary_rate_limit_is_retried_after_the_servers_wait(adapter, scripted, waits):
    message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    scripted.script = [(403, {"Retry-After": "3"}, {"message": message}),
                       (403, {}, {"message": message})]
    assert adapter.get_pull("acme/webapp", 1).number == 1
    assert waits == [3.0, 60.0]


def test_exhausted_rate_limit_waits_until_the_reset(adapter, scripted, waits):
    reset = int(time.time()) + 30
    scripted.script = [(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
                        {"message": "API rate limit exceeded for user ID 1."})]
    assert adapter.get_pull("acme/webapp", 1).number == 1
    assert len(waits) == 1 and 25 <= waits[0] <= 30


def test_attempts_are_capped(adapter, scripted, waits):
    scripted.script = [(503, {}, {"message": "unavailable"})] * 10
    with pytest.raises(TransientError, match="503"):
        adapter.get_pull("acme/webapp", 1)
    assert len(scripted.requests) == 4
    assert waits == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("status, message, error", [
    (404, "Not Found", NotFoundError),
    (401, "Bad credentials", AuthError),
    (403, "Resource not accessible by integration", AuthError),
    (422, "Validation Failed", GitHubRequestError),
])
def test_errors_that_will_not_pass_are_not_retried(adapter, scripted, waits, status, message, error):
    scripted.script = [(status, {}, {"message": message})]
    with pytest.raises(error) as raised:
        adapter.get_pull("acme/webapp", 1)
    assert not isinstance(raised.value, RetryAfter)
    assert len(scripted.requests) == 1 and waits == []


def test_a_refused_connection_is_transient(waits):
    adapter = GitHubAdapter(GitHubConfig(base_url="http://127.0.0.1:9", token="t", write_interval=0, attempts=3),
                            sleep=waits.append)
    with pytest.raises(TransientError):
        adapter.get_pull("acme/webapp", 1)
    assert waits == [1.0, 2.0]


def test_writes_are_spaced_out(scripted):
    slept: list[float] = []
    adapter = GitHubAdapter(GitHubConfig(base_url=scripted.url, token="t", write_interval=5.0),
                            sleep=slept.append)
    comment = {"id": 9, "body": "hello", "user": {"login": "mainline[bot]"}, "html_url": "x"}
    scripted.handlers[("POST", "/repos/acme/webapp/issues/1/comments")] = lambda h, b: (201, {}, comment)
    adapter.create_comment("acme/webapp", 1, "hello")
    adapter.create_comment("acme/webapp", 1, "hello")
    adapter.get_pull("acme/webapp", 1)  # reads are not held back
    assert len(slept) == 1 and 4.0 < slept[0] <= 5.0


def test_write_spacer_waits_only_what_is_left():
    now = [100.0]
    slept: list[float] = []
    spacer = WriteSpacer(1.0, clock=lambda: now[0], sleep=slept.append)
    spacer.wait()
    now[0] += 0.25
    spacer.wait()
    now[0] += 3
    spacer.wait()
    assert slept == [0.75]


def test_token_auth_sends_the_token(adapter, scripted):
    adapter.get_pull("acme/webapp", 1)
    assert scripted.requests[0][2]["Authorization"] == "token t0ken"


# -- GitHub App authentication --------------------------------------------------------------

@pytest.fixture(scope="module")
def app_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def test_app_jwt_claims_follow_githubs_rules(app_key):
    pem, public = app_key
    now = 1_700_000_000
    claims = jwt.decode(app_jwt("12345", pem, now), public, algorithms=["RS256"],
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == "12345"
    assert claims["iat"] == now - 60
    assert now < claims["exp"] <= now + 600
    assert jwt.get_unverified_header(app_jwt("12345", pem, now))["alg"] == "RS256"


def test_installation_token_is_exchanged_once_and_renewed_before_expiry(scripted, app_key):
    pem, public = app_key
    now = [time.time()]
    issued: list[str] = []

    def access_tokens(headers, body):
        bearer = headers["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(bearer, public, algorithms=["RS256"], options={"verify_iat": False})
        assert claims["iss"] == "77"
        issued.append(f"ghs_{len(issued) + 1}")
        expires = datetime.fromtimestamp(now[0], UTC) + timedelta(hours=1)
        return 201, {}, {"token": issued[-1], "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}

    scripted.handlers[("GET", "/repos/acme/webapp/installation")] = lambda h, b: (200, {}, {"id": 42})
    scripted.handlers[("POST", "/app/installations/42/access_tokens")] = access_tokens
    adapter = GitHubAdapter(GitHubConfig(base_url=scripted.url, app_id="77", private_key=pem, write_interval=0),
                            clock=lambda: now[0])

    adapter.get_pull("acme/webapp", 1)
    adapter.get_pull("acme/webapp", 1)
    now[0] += 56 * 60  # four minutes left: inside the renewal margin
    adapter.get_pull("acme/webapp", 1)

    pulls = [r for r in scripted.requests if r[1].startswith("/repos/acme/webapp/pulls/1")]
    assert [r[2]["Authorization"] for r in pulls] == ["token ghs_1", "token ghs_1", "token ghs_2"]
    assert issued == ["ghs_1", "ghs_2"]
    assert adapter.git_remote("acme/webapp").password == "ghs_2"
