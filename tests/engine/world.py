"""A Pipeline over the fakes of tests/fakes: one service, `shop`, whose production follows
master. Everything is in memory: a whole deploy takes milliseconds."""

from __future__ import annotations

from pathlib import Path

from bot.domain import DeployRequest, DeployState
from bot.gating import Gatekeeper
from bot.pipeline import Pipeline, PipelineOptions, Wiring
from tests.fakes import FakeBuilder, FakeChat, FakeGit, FakeGitHost, FakePulls, FakeStore, FakeTarget, FakeTrial

REPO = "acme/shop"
CLONE = f"https://github.com/{REPO}.git"
CONFIG = """\
service: shop
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    replicas: 2
    listen: "127.0.0.1:18080"
    deployers: ["github:octocat"]
health: {path: /health, interval: 0.1s, failures: 1, bake: 1s}
rollback: {auto: true, revert: push}
"""


class World:
    def __init__(self, tmp: Path, config: str = CONFIG):
        self.git, self.store, self.builder = FakeGit(), FakeStore(), FakeBuilder()
        self.target, self.chat, self.github = FakeTarget(), FakeChat(), FakeGitHost()
        self.trial = FakeTrial()
        wiring = Wiring(store=self.store, git=self.git, builder=self.builder,
                        target_for=lambda service, environment, config: self.target,
                        reporters=[self.chat], github=self.github, pulls=FakePulls(),
                        gates=Gatekeeper(github=self.github), trial=self.trial)
        self.pipeline = Pipeline(wiring, PipelineOptions(registry="registry.test", state_dir=tmp, lease_seconds=5,
                                                         sync_bound=0))
        self.root = self.merge({".github/deploy.yml": config, "app.py": "v0"}, "the first commit")

    def merge(self, changes: dict, message: str = "a change") -> str:
        return self.git.commit(CLONE, "master", changes, message)

    def push(self, sha: str, **kw) -> list[dict]:
        """The webhook of a push to master, as intake receives it."""
        return self.pipeline.request(DeployRequest(REPO, CLONE, "refs/heads/master", sha, **kw))

    def ship(self, sha: str) -> None:
        """Push and drive, until nothing moves."""
        self.push(sha)
        self.drive()

    def drive(self) -> None:
        self.pipeline.drive("shop", "production")

    def head(self) -> str:
        head = self.git.head(CLONE, "master")
        assert head is not None
        return head

    def deploy(self, sha: str):
        return next(d for d in self.store.deploys() if d.sha == sha)

    def state(self, sha: str) -> DeployState:
        return DeployState(self.deploy(sha).state)

    def live(self) -> str | None:
        svc = self.store.service("shop")
        release = self.store.live_release(svc.id, "production")
        return release.sha if release else None

    def image(self, sha: str) -> str:
        return f"registry.test/shop:{sha}"
