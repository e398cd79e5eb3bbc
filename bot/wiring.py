"""The one place (with the CLI) that binds concrete adapters to the ports."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from functools import cached_property

from pydantic import ValidationError

from bot.adapters.git import GitClient
from bot.adapters.queue import Queue, make_huey
from bot.adapters.store import Store
from bot.config import ConfigError, ConfigProblem, DeployConfig
from bot.pipeline import Pipeline, PipelineOptions, Wiring
from bot.routing import Router
from bot.gating import Gatekeeper
from bot.reporting import github_host, pull_request_reverter, reporters_for, slack_for
from bot.settings import Settings

log = logging.getLogger("mainline.wiring")


class Targets:
    """One target adapter per kind, made on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._docker = None
        self._ecs_targets: dict = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, environment: str, config: DeployConfig):
        env = config.environments[environment]
        if env.target == "ecs":
            return self._ecs(service, environment, env)
        with self._lock:
            if self._docker is None:
                from bot.adapters.docker_target import DockerTarget

                self._docker = DockerTarget(self.settings.state_dir)
            return self._docker


    def _ecs(self, service: str, environment: str, env):
        import boto3

        from bot.adapters.ecr import EcrRegistry
        from bot.adapters.ecs_target import EcsTarget

        if env.ecs is None:
            raise ConfigError([ConfigProblem(None, f"environments.{environment}.ecs",
                                             "target: ecs needs an `ecs:` block (cluster, service, container)")])
        key = (service, environment)
        with self._lock:
            if key not in self._ecs_targets:
                session = boto3.Session(region_name=env.ecs.region)
                self._ecs_targets[key] = EcsTarget(env.ecs, session=session,
                                                   builder=EcrRegistry(session, region=env.ecs.region))
            return self._ecs_targets[key]


class LazyBuilder:
    def __init__(self, registry: str):
        self.registry = registry

    @cached_property
    def _builder(self):
        from bot.adapters.docker_build import DockerBuilder

        return DockerBuilder(registry=self.registry)

    def ensure_image(self, context, image, on_event):
        return self._builder.ensure_image(context, image, on_event)

    def image_exists(self, image) -> bool:
        return self._builder.image_exists(image)


class LazyChecker:
    """Repo checks in a container of the built image; the docker client is made on first use."""

    @cached_property
    def _runner(self):
        from bot.adapters.check_runner import ContainerCheckRunner

        return ContainerCheckRunner()

    def run_all(self, image, checks, on_event):
        return self._runner.run_all(image, checks, on_event=on_event)


@dataclass
class Wired:
    settings: Settings
    store: Store
    queue: Queue
    pipeline: Pipeline
    router: Router
    slack: object | None = None  # bot.adapters.slack.SlackReporter, when SLACK_BOT_TOKEN is set

    def process_delivery(self, delivery_id: str) -> None:
        """Worker side of the inbox: dispatch a recorded delivery to its handlers, once."""
        if not self.store.claim_delivery(delivery_id, self.pipeline.owner):
            return  # processed already, or another worker has it in hand
        row = self.store.delivery(delivery_id)
        try:
            outcome = "; ".join(str(r) for r in self.router.dispatch(row.event, row.action, json.loads(row.payload),
                                                                        self.pipeline)) or "no handler"
        except ValidationError as exc:
            outcome = f"payload lacks what we need: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"
            log.warning("delivery %s (%s): %s", delivery_id, row.event, outcome)
        self.store.finish_delivery(delivery_id, outcome)
        log.info("delivery %s (%s): %s", delivery_id, row.event, outcome)


def poll_inbox(wired: "Wired", stop: threading.Event, interval: float = 0.2) -> None:
    """The worker's side of the inbox: take recorded deliveries as they arrive. The web process
    only writes the inbox row; nothing else sits between GitHub and its 202."""
    passes = 0
    while not stop.wait(interval):
        try:
            for delivery_id in wired.store.unprocessed_deliveries(older_than=0, limit=50):
                wired.process_delivery(delivery_id)
            passes += 1
            if passes % 10 == 0:
                wired.store.checkpoint()  # the web process's inbox writer leaves this to us
        except Exception:  # noqa: BLE001 - the next pass tries again
            log.exception("inbox pass failed; trying again")


def wire(settings: Settings, role: str = "all", reporters: list | None = None) -> Wired:
    """`role`: "worker" (runs deploys), "web" (answers requests), "cli", or "all" (tests, one
    process). Deploy cards are posted only where deploys run (not "web", nor "cli"), so two
    processes never race to post the same card; the web process still answers in Slack."""
    from handlers.github import router

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url)
    store.migrate()
    queue = Queue(make_huey(settings.queue_url))
    token = settings.github_token.get_secret_value() if settings.github_token else None
    github = github_host(settings)
    slack = slack_for(settings, store)
    git = GitClient(settings.state_dir / "git", token=token)
    wiring = Wiring(
        store=store,
        git=git,
        builder=LazyBuilder(settings.registry),
        target_for=Targets(settings),
        queue=queue,
        reporters=list(reporters if reporters is not None else reporters_for(settings, github, slack if role in ("worker", "all") else None, store=store, git=git)),
        github=github,
        gates=Gatekeeper(github=github),
        checker=LazyChecker(),
        reverter=pull_request_reverter(github, settings) if github is not None else None,
    )
    options = PipelineOptions(registry=settings.registry, state_dir=settings.state_dir,
                              lease_seconds=settings.lease_seconds, public_url=settings.public_url,
                              github_web_base=settings.github_web_base())
    pipeline = Pipeline(wiring, options)
    wired = Wired(settings=settings, store=store, queue=queue, pipeline=pipeline, router=router, slack=slack)
    queue.bind(wired.process_delivery, pipeline.drive)
    return wired
