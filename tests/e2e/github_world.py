"""The bot wired to the local GitHub stand-in (OpenAPI and webhook-schema checks on), for tests
that drive it the way GitHub would.

The stand-in's webhooks are not posted over the network: `World.relay` takes what it sent (real
octokit example payloads, refilled with its objects) and posts them, signed, through the real
Flask app; `World.work` then runs the queued tasks as the worker would."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
import requests

from bot import webhook
from bot.settings import load_settings
from sandbox.github import GitHubSandbox
from sandbox.github_webhooks import Delivery
from sandbox.sample_app import write_sample_app

SECRET = "It's a Secret to Everybody"
TOKEN = "ghp_sandbox"
OWNER = "acme"
BOT_LOGIN = "mainline[bot]"
# Who is who on the stand-in's repositories: octocat may deploy, hubot may push but is no
# deployer, eve may only read.
COLLABORATORS = {"octocat": "admin", "hubot": "write", "eve": "read"}

DEPLOY_YML = """\
service: {service}
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    replicas: 1
    listen: "127.0.0.1:{port}"
    deployers: ["github:octocat"]
  staging:
    target: docker
    branches: ["feature/*"]
    listen: "127.0.0.1:{staging_port}"
    deployers: ["github:octocat", "github:hubot"]
health: {{path: /health, interval: 0.3s, failures: 3, bake: 1s, timeout: 20s, max_error_rate: 0.01}}
rollback: {{auto: true, revert: pull-request}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_service(name: str) -> str:
    return f"g{name}{os.getpid() % 1000}{int(time.time() * 1000) % 100000}"


@dataclass
class World:
    sandbox: GitHubSandbox
    wired: object  # bot.wiring.Wired
    client: object  # Flask test client
    settings: object
    service: str
    repo: str
    port: int
    relayed: set[str] = field(default_factory=set)

    # -- GitHub side ---------------------------------------------------------------------------

    def app_files(self, version: str, mode: str = "healthy") -> dict[str, bytes]:
        """The sample app at `version`, with this world's deploy config."""
        with tempfile.TemporaryDirectory() as tmp:
            write_sample_app(Path(tmp), f"{self.service} {version}", mode=mode, listen=f"127.0.0.1:{self.port}")
            files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
        files[".github/deploy.yml"] = self.config_text().encode()
        return files

    def config_text(self) -> str:
        return DEPLOY_YML.format(service=self.service, port=self.port, staging_port=self.port + 1)

    def head(self, branch: str = "master") -> str:
        return self.sandbox.head(self.repo, branch)

    def open_pr(self, branch: str, files: dict, title: str, author: str = "octocat") -> int:
        self.sandbox.create_branch(self.repo, branch, self.head())
        self.sandbox.push_commit(self.repo, branch, files, title, author_login=author)
        return self.sandbox.open_pull(self.repo, branch, "master", title, user=author)

    def merge_pr(self, branch: str, files: dict, title: str, author: str = "octocat") -> tuple[int, str]:
        number = self.open_pr(branch, files, title, author)
        return number, self.sandbox.merge_pull(self.repo, number)

    def comment(self, number: int, body: str, user: str) -> tuple[int, Delivery]:
        comment_id = self.sandbox.comment(self.repo, number, body, user=user)
        return comment_id, self.sandbox.deliveries[-1]

    def replies(self, number: int) -> list[str]:
        repo = self.sandbox.repo(self.repo)
        return [_unmarked(c.body) for c in sorted(repo.comments.values(), key=lambda c: c.id)
                if c.issue_number == number and c.user == BOT_LOGIN]

    def reactions(self, comment_id: int) -> list[str]:
        return [content for _, content, _ in self.sandbox.repo(self.repo).comments[comment_id].reactions]

    # -- the bot's side ------------------------------------------------------------------------

    def post(self, delivery: Delivery):
        """POST one webhook the stand-in sent, signed, to the bot's endpoint."""
        body = webhook_body(delivery)
        self.relayed.add(delivery.id)
        return self.client.post("/github/webhook", data=body, headers={
            "X-GitHub-Event": delivery.event, "X-GitHub-Delivery": delivery.id,
            "X-Hub-Signature-256": webhook.sign(SECRET, body), "Content-Type": "application/json"})

    def relay(self, events: tuple[str, ...] = ("push", "pull_request", "issue_comment")) -> list[str]:
        """Post every webhook the stand-in sent since the last relay; return their ids."""
        sent = []
        for delivery in list(self.sandbox.deliveries):
            if delivery.id not in self.relayed and delivery.event in events:
                self.post(delivery)
                sent.append(delivery.id)
        return sent

    def lose_webhooks(self) -> list[str]:
        """The bot was down: what the stand-in sent since the last relay never arrives."""
        lost = [d.id for d in self.sandbox.deliveries if d.id not in self.relayed]
        self.relayed.update(lost)
        return lost

    def first_release(self) -> str:
        """v1 (the repository's first commit) goes live through a push to master."""
        sha = self.sandbox.push_commit(self.repo, "master", {"CHANGELOG.md": "v1\n"}, "Start the changelog")
        self.relay()
        self.work()
        assert self.deploys()[sha]["state"] == "live", self.deploys()[sha]
        return sha

    def serves(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.port}/", timeout=5).text.strip()

    def work(self, limit: int = 100) -> int:
        """Do what the worker does (take new inbox deliveries, run queued tasks) until idle."""
        huey = self.wired.queue.huey
        done = 0
        while done < limit:
            inbox = self.wired.store.unprocessed_deliveries(older_than=0)
            for delivery_id in inbox:
                self.wired.process_delivery(delivery_id)
                done += 1
            task = huey.dequeue()
            if task is None and not inbox:
                return done
            if task is not None:
                huey.execute(task)
                done += 1
        raise AssertionError(f"the worker's work did not drain in {limit} steps")

    def deploys(self) -> dict[str, dict]:
        """The production deploys by sha."""
        return {d["sha"]: d for d in self.wired.pipeline.deploys(self.service, limit=50)
                if d["environment"] == "production"}

    def status(self, environment: str = "production") -> dict:
        return next(s for s in self.wired.pipeline.status(self.service) if s["environment"] == environment)


def _unmarked(body: str) -> str:
    """A comment as a person reads it: without the bot's hidden markers."""
    return "\n".join(line for line in body.splitlines() if not line.startswith("<!--")).strip()


def webhook_body(delivery: Delivery) -> bytes:
    return json.dumps(delivery.payload).encode()


def world_settings(state: Path, sandbox_url: str, **overrides):
    values = dict(database_url=f"sqlite:///{state}/mainline.db", queue_url=f"sqlite:///{state}/queue.db",
                  state_dir=state / "bot", github_webhook_secret=SECRET, github_api_url=sandbox_url,
                  github_token=TOKEN, github_write_interval=0, lease_seconds=5, reconcile_seconds=1)
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def world():
    """A stand-in with `acme/<service>` holding v1 of the sample app, and the bot wired to it."""
    from bot.app import create_app
    from bot.wiring import wire

    # Short on purpose: HAProxy's admin socket path must fit in 108 bytes.
    state = Path(tempfile.mkdtemp(prefix="mlg-"))
    sandbox = GitHubSandbox(state / "github", webhook_url=None, webhook_secret=SECRET, validate=True).start()
    service = unique_service("w")
    settings = world_settings(state, sandbox.url)
    wired = wire(settings)
    w = World(sandbox, wired, create_app(settings, wired).test_client(), settings, service,
              f"{OWNER}/{service}", free_port())
    sandbox.create_repo(OWNER, service, dict(w.app_files("v1"), **{"README.md": "# app\n"}),
                        collaborators=dict(COLLABORATORS))
    try:
        yield w
    finally:
        sandbox.flush_webhooks()
        sandbox.stop()
        remove_app(settings.state_dir, service)
        shutil.rmtree(state, ignore_errors=True)
    assert sandbox.violations == [], "the stand-in saw GitHub's contract broken"


def remove_app(state_dir: Path, service: str) -> None:
    """Stop the service's containers and its load balancers (production and staging)."""
    from bot.infra.targets.docker.haproxy import HAProxy

    for environment in ("production", "staging"):
        HAProxy(state_dir, service, environment, "").stop()
    try:
        client = docker.from_env()
    except docker.errors.DockerException:
        return
    for container in client.containers.list(all=True, filters={"label": f"mainline.service={service}"}):
        container.remove(force=True)
    client.close()
