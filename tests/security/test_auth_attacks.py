"""Attacks on who may read and act: freezes (16), open reads that fan out (17), and GitHub sign-in.

16. Any deployer of any service could /unfreeze, and one service whose config was invalid made
    /freeze fail for everyone (the freeze looked through every service's config for the caller).
    Now only MAINLINE_ADMINS freeze and unfreeze, and a freeze reads no service config.
17. `GET /` and `/api/*` needed no sign-in; one `/api/releases` made a GitHub call per pull
    request; `Depends-On:` lists were unbounded. Now reads need a signed-in GitHub user or an API
    token (stored hashed; revocable; read tokens cannot act), `/api/releases` reads PR metadata
    kept when the release went out, and more than 20 `Depends-On:` entries are refused unread."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from click.testing import CliRunner
from pydantic import SecretStr

from bot.cli import main
from sandbox.github import GitHubSandbox
from sandbox.slack import SlackStandIn
from tests.conftest import authed, bearer
from tests.handlers.test_github_webhook import github_web_url, merged_pr, post, publish

SLACK_SECRET = "slack-signing-secret-for-tests"
SLACK_TOKEN = "xoxb-tests"
ADMIN, DEPLOYER = "U0ADMIN", "U0DEPLOYER"  # DEPLOYER is a deployer of web, and not an admin
OAUTH = ("Iv1.authattacks", "auth-attacks-secret")
BROKEN_CONFIG = "service: web\nenvironments:\n  production:\n    replicas: many\n"


@pytest.fixture(scope="module")
def slack():
    with SlackStandIn(token=SLACK_TOKEN) as standin:
        yield standin


@pytest.fixture
def github(tmp_path):
    sandbox = GitHubSandbox(tmp_path / "github-standin", validate=True).start()
    yield sandbox
    sandbox.stop()
    assert sandbox.violations == [], "the stand-in saw a request GitHub would refuse"


@pytest.fixture
def settings(settings, tmp_path, slack):
    """Slack on the stand-in, one admin, and a file:// GitHub base holding the repositories."""
    return settings.model_copy(update={
        "github_web_url": github_web_url(tmp_path), "admins": f"slack:{ADMIN},github:octocat",
        "slack_signing_secret": SecretStr(SLACK_SECRET), "slack_bot_token": SecretStr(SLACK_TOKEN),
        "slack_api_url": slack.url})


@pytest.fixture
def wired(settings):
    from bot.wiring import wire

    wired = wire(settings)
    yield wired
    wired.slack.close()


@pytest.fixture
def web(client, wired, local_repo, settings):
    """`web` is deployed from the sample repository; DEPLOYER may deploy it, and is no admin."""
    publish(local_repo, settings)
    config = (local_repo.work / ".github" / "deploy.yml").read_text()
    config = config.replace("    auto_deploy: true\n", f'    auto_deploy: true\n    deployers: ["slack:{DEPLOYER}"]\n')
    sha = local_repo.commit("Merge pull request #7 from octocat/feature", {".github/deploy.yml": config})
    post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-web")
    wired.process_delivery("d-web")
    return sha


def slash(client, slack, command: str, text: str = "", user: str = DEPLOYER) -> dict:
    """A slash command signed as Slack signs it; the answer that reaches its response_url."""
    url = slack.response_url()
    body = urlencode({"command": command, "text": text, "user_id": user, "channel_id": "CDEPLOYS",
                      "response_url": url, "team_id": "T1", "user_name": "someone", "trigger_id": "1.2.3"})
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(SLACK_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    ack = client.post("/slack/commands", data=body, headers={
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded"})
    assert ack.status_code == 200, ack.get_data(as_text=True)
    rid = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answers = slack.responses.get(rid)
        if answers:
            return answers[0]
        time.sleep(0.05)
    raise AssertionError(f"no answer to {command} {text}")


def frozen(wired) -> bool:
    return wired.store.lock_for("*", "*") is not None


# -- 16: freezes ---------------------------------------------------------------------------------


def test_attack_16_a_deployer_who_is_not_an_admin_cannot_freeze_or_unfreeze(client, wired, slack, web):
    refused = slash(client, slack, "/freeze", "my release first")
    assert refused["text"] == (":no_entry: Only a Mainline admin may freeze; "
                               "MAINLINE_ADMINS lists who is (ask one of them).")
    assert refused["response_type"] == "ephemeral" and not frozen(wired)

    assert slash(client, slack, "/freeze", "incident 42", user=ADMIN)["text"].startswith(":snowflake:")
    refused = slash(client, slack, "/unfreeze")
    assert refused["text"] == (":no_entry: Only a Mainline admin may unfreeze; "
                               "MAINLINE_ADMINS lists who is (ask one of them).")
    # The freeze holds: production deploys of web still wait on it.
    assert frozen(wired) and wired.store.lock_for("*", "*").reason == "incident 42"
    # The audit log tells who tried.
    log = authed(client, wired).get("/api/events").get_json()
    refusals = [e for e in log if e["kind"] == "refused"]
    assert [(e["service"], e["by"]) for e in refusals] == [("*", f"slack:{DEPLOYER}")] * 2


def test_attack_16_one_invalid_service_config_does_not_stop_an_admins_freeze(client, wired, slack, web, local_repo):
    from bot.config import ConfigError

    local_repo.commit("break the config", {".github/deploy.yml": BROKEN_CONFIG})
    with pytest.raises(ConfigError):  # the service's own config cannot be read any more
        wired.pipeline.service_config("web")

    answer = slash(client, slack, "/freeze", "quarter end", user=ADMIN)

    assert answer["text"] == f":snowflake: <@{ADMIN}> froze deploys: quarter end"
    assert frozen(wired)
    assert slash(client, slack, "/unfreeze", user=ADMIN)["text"] == f":sunny: <@{ADMIN}> lifted the deploy freeze."
    assert not frozen(wired)


# -- 17: reads need sign-in, and never fan out -----------------------------------------------------

READS = ["/", "/api/services", "/api/deploys?service=web", "/api/releases?service=web", "/api/deliveries",
         "/api/deliveries?failed=true", "/metrics"]


def test_attack_17_anonymous_reads_are_refused(client, web):
    for path in READS:
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert "Authorization: Bearer" in answer.get_json()["error"], path
    # A browser is sent to sign in; with no GitHub sign-in set up it is told so, on a 401 page.
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "GITHUB_OAUTH_CLIENT_ID" in page.get_data(as_text=True)
    assert web not in page.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200


def test_attack_17_public_read_opens_the_board_and_nothing_else(settings, wired, web):
    from bot.app import create_app

    anyone = create_app(settings.model_copy(update={"public_read": True}), wired).test_client()
    assert anyone.get("/api/services").status_code == 200
    assert anyone.get("/").status_code == 200
    assert anyone.get("/api/deliveries").status_code == 401  # payloads and errors are for operators
    assert anyone.post("/api/services").status_code == 401


def test_attack_17_a_read_token_reads_and_a_revoked_token_is_refused(client, wired, settings, web, monkeypatch):
    monkeypatch.setenv("MAINLINE_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    made = runner.invoke(main, ["tokens", "create", "dashboards", "--scope", "read"], catch_exceptions=False)
    assert made.exit_code == 0
    token = made.stdout.strip()
    assert token.startswith("mlt_") and "shown only now" in made.stderr
    with wired.store.session() as s:  # only the digest is kept
        stored = [row[0] for row in s.execute(__import__("sqlalchemy").text("SELECT token_hash FROM api_tokens"))]
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]

    for path in READS:
        assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200, path
    [row] = client.get("/api/services", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert row["service"] == "web"
    assert client.get("/api/services", headers={"Authorization": f"Bearer {token}x"}).status_code == 401

    revoked = runner.invoke(main, ["tokens", "revoke", "dashboards"], catch_exceptions=False)
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    answer = client.get("/api/services", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and "error" in answer.get_json()


def test_attack_17_a_read_token_cannot_act(client, wired, web):
    reader = authed(client, wired, "read")
    for path in ("/api/services", "/api/deploys?service=web", "/api/deliveries", "/"):
        answer = reader.post(path, json={"service": "web", "sha": web})
        assert answer.status_code == 403, path
        assert "may only read" in answer.get_json()["error"] and "--scope deploy" in answer.get_json()["error"]
    assert [d["sha"] for d in wired.pipeline.deploys("web")] == [web]  # nothing new queued
    # A deploy token passes the sign-in check (no such action route exists: 405, not 403).
    assert client.post("/api/services", headers=bearer(wired.store, "deploy")).status_code == 405


def test_attack_17_api_releases_makes_no_github_call_per_pull_request(tmp_path, github, settings):
    from bot.app import create_app
    from bot.notify.release_reporter import notes_for
    from bot.wiring import wire

    github.create_repo("acme", "shop", {".github/deploy.yml": "service: shop\nenvironments: {production: {}}\n"})
    first = github.head("acme/shop", "master")
    titles = {}
    for i in range(25):
        branch = f"change-{i}"
        github.create_branch("acme/shop", branch, github.head("acme/shop", "master"))
        github.push_commit("acme/shop", branch, {f"{branch}.txt": "x"}, f"Change {i}", author_login="hubot")
        number = github.open_pull("acme/shop", branch, "master", f"Change number {i}", user="hubot")
        github.merge_pull("acme/shop", number)
        titles[number] = f"Change number {i}"
    tip = github.head("acme/shop", "master")
    settings = settings.model_copy(update={"github_api_url": github.url, "github_web_url": github.url,
                                           "github_token": SecretStr("ghp_tests"), "github_write_interval": 0,
                                           "slack_signing_secret": None, "slack_bot_token": None})
    wired = wire(settings, reporters=[])
    row = wired.store.upsert_service("shop", "acme/shop", f"{github.url}/acme/shop.git", "master")
    wired.store.environment(row.id, "production")
    wired.store.set_live(row.id, "production", first, "127.0.0.1:5000/shop:v1", None, None)
    wired.store.set_live(row.id, "production", tip, "127.0.0.1:5000/shop:v2", None, None)
    notes_for(wired.pipeline, "shop", "production", tip)  # as the release went live: GitHub asked once per PR
    calls = count_requests(github)
    client = authed(create_app(settings, wired).test_client(), wired)

    for _ in range(3):
        answer = client.get("/api/releases?service=shop")
        assert answer.status_code == 200

    newest = answer.get_json()[0]
    assert {p["number"]: p["title"] for p in newest["notes"]["pulls"]} == titles
    assert {p["author"] for p in newest["notes"]["pulls"]} == {"hubot"}
    assert [c for c in calls if not c.endswith((".git/info/refs", "git-upload-pack"))] == []


def count_requests(sandbox) -> list[str]:
    """Every request path the stand-in receives from now on."""
    seen: list[str] = []
    lock = threading.Lock()
    inner = sandbox._server.app

    def counting(environ, start_response):
        with lock:
            seen.append(environ.get("PATH_INFO", ""))
        return inner(environ, start_response)

    sandbox._server.app = counting
    return seen


def test_attack_17_two_thousand_depends_on_lines_are_capped_unread(client, wired, local_repo, web):
    from bot.domain.github import PullRequest
    from bot.gating import Gatekeeper
    from checks.depends_on import depends_on_gate

    lines = "\n".join(f"Depends-On: Codertocat/Hello-World#{n}" for n in range(1, 2001))
    sha = local_repo.commit("Merge pull request #8 from octocat/deps", {"deps.txt": "x"})
    post(client, "pull_request", merged_pr(local_repo, sha, number=8), delivery="d-deps")
    wired.process_delivery("d-deps")

    class CountingGitHub:
        """GitHub as the gate sees it: PR #8's body carries the 2,000 lines; each call is counted."""

        def __init__(self) -> None:
            self.asked: list[int] = []

        def get_pull(self, repo, number):
            self.asked.append(number)
            return PullRequest(number, "deps", "mallory", lines if number == 8 else "", True, sha,
                               f"https://github.com/{repo}/pull/{number}", merge_commit_sha=sha)

    service = wired.store.service("web")
    deploy = next(d for d in wired.store.deploys(service.id, "production") if d.sha == sha)
    github = CountingGitHub()
    result = depends_on_gate(Gatekeeper(github=github).dependencies(
        wired.pipeline, service, deploy, wired.pipeline.authority_config(service)))

    assert github.asked == [8]  # the PR's own body, and none of the 2,000 it names
    assert result.status.value == "wait"
    assert result.reason.startswith("more than 20 Depends-On entries (21 or more); Mainline checks at most 20")
    assert "--force" in result.reason
    assert wired.store.live_release(service.id, "production") is None  # nothing went out


# -- signing in with GitHub ----------------------------------------------------------------------------


@pytest.fixture
def signin(settings, wired, github):
    """The app with GitHub sign-in on the stand-in's OAuth app."""
    from bot.app import create_app

    github.oauth.register_app(OAUTH[0], OAUTH[1], "http://127.0.0.1:8000/login/callback")
    app_settings = settings.model_copy(update={
        "github_api_url": github.url, "github_web_url": github.url, "public_url": "http://127.0.0.1:8000",
        "github_oauth_client_id": OAUTH[0], "github_oauth_client_secret": SecretStr(OAUTH[1]),
        # No service is deployed here, so only an admin may read; strangers are refused (red team R5).
        "admins": "github:octocat"})
    return create_app(app_settings, wired).test_client()


def start_sign_in(client, github, next_path: str = "/") -> dict:
    """GET /login; the query of GitHub's authorize URL it sends the browser to."""
    answer = client.get("/login?" + urlencode({"next": next_path}))
    assert answer.status_code == 302
    where = urlparse(answer.headers["Location"])
    assert f"{where.scheme}://{where.netloc}" == github.url and where.path == "/login/oauth/authorize"
    return {k: v[0] for k, v in parse_qs(where.query).items()}


def authorize(github, query: dict, login: str = "octocat") -> dict:
    """The person signs in at GitHub, which sends them back to the callback with code and state."""
    back = requests.get(f"{github.url}/login/oauth/authorize", params={**query, "login": login},
                        allow_redirects=False, timeout=5)
    assert back.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlparse(back.headers["Location"]).query).items()}


def test_sign_in_with_github_sets_a_session_and_the_dashboard_opens(signin, github, wired):
    page = signin.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=")
    query = start_sign_in(signin, github, next_path="/api/services")
    assert query["client_id"] == OAUTH[0] and query["redirect_uri"] == "http://127.0.0.1:8000/login/callback"
    back = authorize(github, query)

    landed = signin.get("/login/callback?" + urlencode(back))

    assert landed.status_code == 302 and landed.headers["Location"] == "/api/services"
    cookie = next(c for c in landed.headers.getlist("Set-Cookie") if c.startswith("mainline_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    session_id = signin.get_cookie("mainline_session").value
    assert signin.get("/api/services").status_code == 200 and signin.get("/").status_code == 200
    with wired.store.session() as s:
        [(stored, login)] = s.execute(__import__("sqlalchemy").text("SELECT id_hash, login FROM web_sessions"))
    assert login == "octocat" and stored == hashlib.sha256(session_id.encode()).hexdigest()
    # A signed-in person reads; acting is not theirs through the web.
    assert signin.post("/api/services").status_code == 403

    assert signin.get("/logout").status_code == 200
    assert signin.get("/api/services").status_code == 401
    # The old cookie, replayed, is worth nothing.
    signin.set_cookie("mainline_session", session_id)
    assert signin.get("/api/services").status_code == 401


def test_sign_in_refuses_a_state_that_does_not_match(signin, github):
    query = start_sign_in(signin, github)
    back = authorize(github, query)

    forged = signin.get("/login/callback?" + urlencode({"code": back["code"], "state": "someone-elses"}))

    assert forged.status_code == 400 and "state does not match" in forged.get_data(as_text=True)
    assert signin.get_cookie("mainline_session") is None
    assert signin.get("/api/services").status_code == 401
    # A callback from a browser that never started signing in is refused the same way.
    fresh = signin.application.test_client()
    assert fresh.get("/login/callback?" + urlencode(back)).status_code == 400


def test_sign_in_refuses_a_callback_without_a_code(signin, github):
    query = start_sign_in(signin, github)

    answer = signin.get("/login/callback?" + urlencode({"state": query["state"]}))

    assert answer.status_code == 400 and "no code" in answer.get_data(as_text=True)
    assert signin.get("/api/services").status_code == 401


def test_sign_in_refuses_a_code_github_does_not_accept_and_never_leaves_the_site(signin, github):
    query = start_sign_in(signin, github, next_path="//evil.example/steal")
    back = authorize(github, query)
    used = signin.get("/login/callback?" + urlencode({"state": back["state"], "code": "not-a-code"}))
    assert used.status_code == 400 and "did not accept the sign-in code" in used.get_data(as_text=True)

    query = start_sign_in(signin, github, next_path="//evil.example/steal")
    landed = signin.get("/login/callback?" + urlencode(authorize(github, query)))
    assert landed.status_code == 302 and landed.headers["Location"] == "/"
