"""Issue 9's secrets scan: one end-to-end story on real parts with known, distinctive secret
values in the settings and in the environment, then every place a person or a log reader can see
is searched for them.

Real parts: the GitHub stand-in (its webhooks relayed, signed, through the real Flask app), the
Docker engine, the registry and HAProxy, and the Slack stand-in. The repository does its best to
leak: its check runs `env`, and its `/health` answers with its environment, so check output and
probe evidence carry whatever the bot let into a container. The story: a merge goes live, a bad
merge is rolled back and reverted by pull request, a merge whose check fails is refused, Slack
failing for a while, PR comment commands, Slack slash commands, a GitHub sign-in (and a refused
one), API reads with a token, forged webhook and Slack signatures, and GitHub reached as an App.
Then: log records at DEBUG (raw, before the log filter's mask), events, API answers, everything on
both stand-ins, and each deploy's reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import docker
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot import webhook
from bot.pipeline import wait_until
from sandbox.github import GitHubSandbox
from sandbox.github_webhooks import Delivery
from sandbox.sample_app import INDEX_CGI
from sandbox.slack import SlackStandIn, all_text
from tests.conftest import bearer
from tests.e2e import github_world as gw

pytestmark = pytest.mark.docker

WEBHOOK_SECRET = "whsec-MainlineScan-7f3a9c1e5b2d"
GITHUB_TOKEN = "ghp_MainlineScan0123456789abcdefghijklmn"
SLACK_BOT_TOKEN = "xoxb-1234567890-0987654321-MainlineScanSlackBot"
SLACK_SIGNING_SECRET = "8f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c"
OAUTH_CLIENT = ("Iv1.mainlinescan", "oauth-client-secret-MainlineScan-42")
SESSION_SECRET = "session-secret-MainlineScan-5150"
AWS_ACCESS_KEY_ID = "AKIAMAINLINESCAN7EXA"
AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/MainlineScanEXAMPLEKEY"
SLACK_DEPLOYER = "U0SCANNER"
# Issue 16: a secret the bot resolves (from MAINLINE_SECRETS_DIR) and hands to the app's containers,
# whose /health prints its environment: every place it could travel to must show *** instead.
APP_SECRET = "app-db-password-MainlineScan-31337"
# Loggers bot.logs quietens, and ours: all at DEBUG here, where a dumped request would show.
DEBUG_LOGGERS = ("urllib3", "docker", "huey", "werkzeug", "alembic", "github", "bot", "handlers", "checks",
                 "mainline")

# The repository tries to leak: its check prints the environment, and so does its /health.
DEPLOY_YML = """\
service: {service}
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    replicas: 1
    listen: "127.0.0.1:{port}"
    deployers: ["github:octocat", "slack:{slack}"]
    env: {{APP_ENV: production}}
    secrets: {{APP_DB_PASSWORD: file:db-password}}
checks:
  - {{name: environment, run: "{check}", timeout: 30s}}
health: {{path: /health, interval: 0.3s, failures: 3, bake: 1s, timeout: 20s, max_error_rate: 0.01}}
rollback: {{auto: true, revert: pull-request}}
"""
# Probe evidence keeps a short excerpt (300 characters), so the CGI's own variables are left out:
# what is printed is what the platform put in the container, where a leak would be.
OWN_ENV = "^(GATEWAY_INTERFACE|SERVER_|REMOTE_|HTTP_|SCRIPT_|REQUEST_|QUERY_STRING|PATH|HOME|HOSTNAME|SHLVL|PWD)"
PRINT_ENV = f"leaked: $(env | grep -v -E '{OWN_ENV}' | tr '\\n' ' ')"
LEAKY_CGI = (INDEX_CGI.replace('answer "200 OK" ok;', f'answer "200 OK" "ok {PRINT_ENV}";')
             .replace('"unhealthy: $health"', f'"unhealthy {PRINT_ENV}"'))


def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class ScanWorld(gw.World):
    """The e2e world with this test's webhook secret, a leaky app and a check of our choosing."""

    check = "env"
    slack: SlackStandIn
    api_token = ""

    def config_text(self) -> str:
        return DEPLOY_YML.format(service=self.service, port=self.port, slack=SLACK_DEPLOYER, check=self.check)

    def app_files(self, version: str, mode: str = "healthy") -> dict[str, bytes]:
        files = super().app_files(version, mode)
        files["www/cgi-bin/index.cgi"] = LEAKY_CGI.encode()
        return files

    def post(self, delivery: Delivery):
        body = gw.webhook_body(delivery)
        self.relayed.add(delivery.id)
        return self.client.post("/github/webhook", data=body, headers={
            "X-GitHub-Event": delivery.event, "X-GitHub-Delivery": delivery.id,
            "X-Hub-Signature-256": webhook.sign(WEBHOOK_SECRET, body), "Content-Type": "application/json"})


class RawRecords(logging.Handler):
    """Each record as text at the moment it is logged, before any handler's filter runs.

    The product's secrets filter (bot.logs) rewrites records in place, and an earlier CLI test may
    have put it on pytest's session-wide handlers; scanning records after it would test the net,
    not the code. This handler goes first, so it sees what the code itself wrote."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name} {record.levelname}: {text}\n{record.exc_text or ''}")


@pytest.fixture
def secrets_env(monkeypatch):
    """Every secret in the environment too, as `mainline serve` would have them, so a container
    or subprocess that inherits the bot's environment shows them."""
    pem = private_key_pem()
    values = {"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET, "GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_APP_PRIVATE_KEY": pem,
              "SLACK_BOT_TOKEN": SLACK_BOT_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
              "GITHUB_OAUTH_CLIENT_SECRET": OAUTH_CLIENT[1], "MAINLINE_SESSION_SECRET": SESSION_SECRET,
              "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET_ACCESS_KEY}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def raw_logs(caplog):
    caplog.set_level(logging.DEBUG)
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.WARNING, logger="sqlalchemy")  # SQL echo: slow, and the events are scanned anyway
    handler = RawRecords()
    root = logging.getLogger()
    root.handlers.insert(0, handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def scan_world(secrets_env, raw_logs):
    from bot.app import create_app
    from bot.wiring import wire

    state = Path(tempfile.mkdtemp(prefix="mls-"))  # short: HAProxy's socket path must fit in 108 bytes
    (state / "secrets").mkdir()
    (state / "secrets" / "db-password").write_text(APP_SECRET + "\n")
    sandbox = GitHubSandbox(state / "github", webhook_url=None, webhook_secret=WEBHOOK_SECRET, validate=True).start()
    slack = SlackStandIn(token=SLACK_BOT_TOKEN).start()
    sandbox.oauth.register_app(*OAUTH_CLIENT, callback_url="http://127.0.0.1:8000/login/callback")
    settings = gw.world_settings(
        state, sandbox.url, github_webhook_secret=WEBHOOK_SECRET, github_token=GITHUB_TOKEN,
        github_app_private_key=secrets_env["GITHUB_APP_PRIVATE_KEY"], slack_bot_token=SLACK_BOT_TOKEN,
        slack_signing_secret=SLACK_SIGNING_SECRET, slack_api_url=slack.url, slack_channel="#deploys",
        slack_users="octocat=U0OCTOCAT", github_oauth_client_id=OAUTH_CLIENT[0],
        github_oauth_client_secret=OAUTH_CLIENT[1], github_web_url=sandbox.url,
        public_url="http://127.0.0.1:8000", session_secret=SESSION_SECRET, secrets_dir=state / "secrets")
    wired = wire(settings)
    service = gw.unique_service("s")
    w = ScanWorld(sandbox, wired, create_app(settings, wired).test_client(), settings, service,
                  f"{gw.OWNER}/{service}", gw.free_port())
    w.slack = slack
    sandbox.create_repo(gw.OWNER, service, dict(w.app_files("v1"), **{"README.md": "# app\n"}),
                        collaborators=dict(gw.COLLABORATORS))
    try:
        yield w
    finally:
        wired.slack.close()
        sandbox.flush_webhooks()
        sandbox.stop()
        slack.stop()
        gw.remove_app(settings.state_dir, service)
        remove_images(f"{settings.registry}/{service}")
        shutil.rmtree(state, ignore_errors=True)
    assert sandbox.violations == [], "the stand-in saw GitHub's contract broken"
    assert slack.violations == [], "the Slack stand-in saw malformed calls"


def remove_images(repository: str) -> None:
    client = docker.from_env()
    for image in client.images.list(name=repository):
        client.images.remove(image.id, force=True)
    client.close()


# -- the story ------------------------------------------------------------------------------------------


def slash(world: ScanWorld, command: str, text: str) -> dict:
    """A signed slash command from the Slack deployer; the answer that came back by response_url."""
    url = world.slack.response_url()
    body = urlencode({"token": "legacy", "team_id": "T0SCAN", "channel_id": "C0OPS", "user_id": SLACK_DEPLOYER,
                      "user_name": "scanner", "command": command, "text": text, "response_url": url,
                      "trigger_id": "1.2.3"})
    ts = str(int(time.time()))
    digest = hmac.new(SLACK_SIGNING_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    ack = world.client.post("/slack/commands", data=body, headers={
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded"})
    assert ack.status_code == 200, ack.get_data(as_text=True)
    rid = url.rsplit("/", 1)[1]
    assert wait_until(lambda: world.slack.responses.get(rid), 15, 0.02), f"no answer to {command} {text}"
    return world.slack.responses[rid][0]


def pr_command(world: ScanWorld, number: int, body: str, user: str = "octocat") -> str:
    world.comment(number, body, user)
    world.relay()
    world.work()
    return world.replies(number)[-1]


def sign_in(world: ScanWorld) -> list[str]:
    """GitHub sign-in through the stand-in's OAuth app, and a callback with a code it refuses."""
    answers = []
    for code in (None, "not-a-code"):
        client = world.client.application.test_client()  # a browser of its own each time
        start = client.get("/login?" + urlencode({"next": "/api/services"}))
        query = {k: v[0] for k, v in parse_qs(urlparse(start.headers["Location"]).query).items()}
        back = requests.get(f"{world.sandbox.url}/login/oauth/authorize", params={**query, "login": "octocat"},
                            allow_redirects=False, timeout=5)
        params = {k: v[0] for k, v in parse_qs(urlparse(back.headers["Location"]).query).items()}
        landed = client.get("/login/callback?" + urlencode(dict(params, code=code or params["code"])))
        answers.append(landed.get_data(as_text=True) + json.dumps(dict(landed.headers)))
        assert client.get("/api/services").status_code == (401 if code else 200), (landed.status_code, answers[-1])
    return answers


def play(world: ScanWorld) -> dict:
    """The story; returns what each step answered, to be scanned with the rest."""
    answers: dict[str, object] = {}
    world.first_release()
    world.slack.fail_next(3, status=500, methods={"chat.postMessage", "chat.update"})  # errors get logged too
    v2_pr, v2 = world.merge_pr("octocat/v2", world.app_files("v2"), "Add the v2 page")
    world.relay()
    world.work()
    assert world.deploys()[v2]["state"] == "live" and world.serves() == f"{world.service} v2"

    _, v3 = world.merge_pr("octocat/v3", world.app_files("v3", mode="unhealthy"), "Break the health page")
    world.relay()
    world.work()
    world.relay()  # the revert pull request's merge, as GitHub tells it
    world.work()
    assert world.deploys()[v3]["state"] == "reverted", world.deploys()[v3]["reason"]
    assert world.serves() == f"{world.service} v2"
    assert any(p.title == 'Revert "Break the health page"' and p.merged
               for p in world.sandbox.repo(world.repo).pulls.values())

    world.check = "env; echo the tests failed; exit 3"
    _, v4 = world.merge_pr("octocat/v4", world.app_files("v4"), "Tighten the checks")
    world.relay()
    world.work()
    assert world.deploys()[v4]["state"] == "failed" and "exit code 3" in world.deploys()[v4]["reason"]

    answers["pr"] = [pr_command(world, v2_pr, "/lock production scanning for secrets"),
                     pr_command(world, v2_pr, "/unlock production"),
                     pr_command(world, v2_pr, "/deploy production", user="eve")]
    answers["slack"] = [slash(world, "/status", world.service), slash(world, "/history", world.service),
                        slash(world, "/lock", f"{world.service} production scanning"),
                        slash(world, "/unlock", world.service), slash(world, "/deploy", "nosuchservice")]
    answers["sign-in"] = sign_in(world)
    answers["api"] = api_reads(world)
    answers["forged"] = forged_requests(world)
    answers["app"] = app_mode(world)
    assert world.wired.slack.flush(15), "the Slack reporter did not catch up"
    world.sandbox.flush_webhooks()
    return answers


def forged_requests(world: ScanWorld) -> list[str]:
    """A webhook and a slash command signed with the wrong secret: what the refusals say."""
    body = b'{"zen": "Keep it logically awesome."}'
    hook = world.client.post("/github/webhook", data=body, headers={
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": "forged-1", "Content-Type": "application/json",
        "X-Hub-Signature-256": webhook.sign("not-the-secret", body)})
    command = world.client.post("/slack/commands", data="command=%2Fstatus&text=", headers={
        "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64,
        "Content-Type": "application/x-www-form-urlencoded"})
    assert hook.status_code == 401 and command.status_code == 401
    return [hook.get_data(as_text=True), command.get_data(as_text=True)]


def app_mode(world: ScanWorld) -> dict:
    """The same stand-in reached as a GitHub App (JWT signed with the key, installation token),
    as a deployment without GITHUB_TOKEN would; returns the installation token to scan for."""
    from bot.notify.reporting import github_host

    host = github_host(world.settings.model_copy(update={
        "github_token": None, "github_app_id": 4242, "github_app_installation_id": 77}))
    seen = {"login": host.bot_login(), "comments": [c.body for c in host.comments(world.repo, 1)]}
    seen["token"] = host.git_remote(world.repo).password
    return seen


def api_reads(world: ScanWorld) -> dict[str, str]:
    """Every read route with a read token, and the refusal without one."""
    auth = bearer(world.wired.store)
    world.api_token = auth["Authorization"].removeprefix("Bearer ")
    paths = ["/api/services", f"/api/deploys?service={world.service}&limit=50",
             f"/api/releases?service={world.service}", "/api/deliveries", "/api/deliveries?failed=true",
             "/metrics", "/", "/healthz"]
    seen = {}
    for path in paths:
        answer = world.client.get(path, headers=dict(auth, Accept="text/html"))
        assert answer.status_code == 200, (path, answer.get_data(as_text=True))
        seen[path] = answer.get_data(as_text=True)
    seen["anonymous"] = world.client.get("/api/services").get_data(as_text=True)
    return seen


# -- the scan -------------------------------------------------------------------------------------------


def needles(env: dict[str, str], world: ScanWorld, answers: dict) -> dict[str, str]:
    """Each secret value by a name for the report, with the forms it may travel in, and the
    credentials made during the story (the API token, OAuth user tokens, the installation token)."""
    found = {name: value for name, value in env.items()}
    found["APP_DB_PASSWORD (resolved from file:db-password)"] = APP_SECRET
    found["API read token"] = world.api_token
    found["installation token"] = answers["app"].pop("token")
    found.update({f"OAuth user token of {login}": token for token, login in world.sandbox.oauth.tokens.items()})
    # git's http.extraHeader carries the token as Basic auth.
    found["GITHUB_TOKEN (Basic auth)"] = base64.b64encode(f"x-access-token:{GITHUB_TOKEN}".encode()).decode()
    found["GITHUB_TOKEN (base64)"] = base64.b64encode(GITHUB_TOKEN.encode()).decode().rstrip("=")
    # A key shown line by line (a traceback, a repr) is still the key.
    body = [line for line in env["GITHUB_APP_PRIVATE_KEY"].splitlines() if line and not line.startswith("-----")]
    found.update({f"GITHUB_APP_PRIVATE_KEY line {i}": line for i, line in enumerate(body)})
    return found


def github_texts(world: ScanWorld) -> Iterator[tuple[str, str]]:
    repo = world.sandbox.repo(world.repo)
    for pull in repo.pulls.values():
        yield f"PR #{pull.number}", f"{pull.title}\n{pull.body}"
    for comment in repo.comments.values():
        yield f"comment {comment.id} on #{comment.issue_number}", comment.body
    for status in repo.statuses:
        yield f"status {status.context}", f"{status.description} {status.target_url}"
    for run in repo.check_runs.values():
        yield f"check run {run.name}", json.dumps([run.output, run.details_url, run.external_id])
    for deployment in repo.deployments.values():
        yield f"deployment {deployment.id}", json.dumps([deployment.description, deployment.payload])
        for st in deployment.statuses:
            yield f"deployment status {st.id}", f"{st.description} {st.environment_url} {st.log_url}"
    yield "commit messages", repo.git.out("log", "--all", "--format=%B")


def slack_texts(world: ScanWorld) -> Iterator[tuple[str, str]]:
    for channel, messages in world.slack.messages.items():
        for message in messages:
            yield f"Slack message {channel}/{message.ts}", all_text(message)
    yield "Slack responses", json.dumps(world.slack.responses)
    yield "Slack ephemeral", json.dumps(world.slack.ephemeral)
    for call in world.slack.calls:
        # The bot's own token in its calls is how it signs in, not a leak.
        yield f"Slack call {call.method}", json.dumps({k: v for k, v in call.params.items() if k != "token"})


def bot_texts(world: ScanWorld, raw: RawRecords, caplog) -> Iterator[tuple[str, str]]:
    for i, line in enumerate(raw.lines):
        yield f"log line {i}", line
    for record in caplog.records:
        yield f"caplog {record.name}", f"{record.getMessage()}\n{record.exc_text or ''}"
    for event in world.wired.store.events_since(0, limit=100_000):
        yield f"event {event.id} ({event.kind})", f"{event.message}\n{json.dumps(event.data)}"
    for deploy in world.wired.pipeline.deploys(world.service, limit=200):
        yield f"deploy {deploy['id']} reason", str(deploy.get("reason"))


def leaks(texts: Iterator[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    found = []
    for where, text in texts:
        for name, value in secrets.items():
            if value and value in (text or ""):
                at = text.index(value)
                found.append(f"{name} in {where}: …{text[max(0, at - 120):at + len(value) + 40]!r}…")
    return found


def test_no_secret_reaches_a_log_event_api_answer_pr_or_slack_message(scan_world, secrets_env, raw_logs, caplog):
    answers = play(scan_world)

    secrets = needles(secrets_env, scan_world, answers)
    texts = [*bot_texts(scan_world, raw_logs, caplog), *github_texts(scan_world), *slack_texts(scan_world),
             ("story answers", json.dumps(answers))]
    # The scan looked where the leaks would be: the check's and the probe's output reached people.
    everything = "\n".join(text for _, text in texts)
    assert "MAINLINE_CHECK=environment" in everything, "the check's `env` output was shown nowhere"
    assert re.search(r"500 unhealthy leaked: [^\n]*PORT=\d+", everything), "the probe's body was shown nowhere"
    assert "APP_DB_PASSWORD=***" in everything, "the container's resolved secret was never shown (masked)"
    assert len(raw_logs.lines) > 100 and gw.BOT_LOGIN in everything
    found = leaks(iter(texts), secrets)
    assert not found, "secrets leaked:\n" + "\n".join(found)
