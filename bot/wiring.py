"""The one place (with the CLI) that binds concrete adapters to the ports."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from pydantic import SecretStr, ValidationError

from bot import webhook
from bot.config import ConfigError, ConfigProblem, DeployConfig
from bot.culprit.docker_trial import DockerShadowTrial
from bot.gating import Gatekeeper
from bot.infra.db.queue import Queue, make_huey
from bot.infra.db.store import Store
from bot.infra.git import GitClient
from bot.infra.secrets import SecretResolver
from bot.logs import log_context
from bot.notify.reporting import github_host, pull_request_reverter, reporters_for, slack_for
from bot.pipeline import Pipeline, PipelineOptions, Wiring
from bot.routing import Router
from bot.settings import Settings

if TYPE_CHECKING:
    # Imported where first used: docker and boto3 load only in a process that needs them.
    from bot.infra.targets.docker.target import DockerTarget
    from bot.infra.targets.ecs.group import EcsGroup
    from bot.infra.targets.ecs.target import EcsTarget

log = logging.getLogger("mainline.wiring")

_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


class Targets:
    """One target adapter per kind, made on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._docker: DockerTarget | None = None
        self._ecs_targets: dict[tuple[str, str, str], EcsTarget | EcsGroup] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, environment: str, config: DeployConfig):
        env = config.environments[environment]
        if env.target == "ecs":
            return self._ecs(service, environment, env)
        with self._lock:
            if self._docker is None:
                from bot.infra.secrets import SecretResolver
                from bot.infra.targets.docker.hosts import HostAccess
                from bot.infra.targets.docker.target import DockerTarget

                self._docker = DockerTarget(self.settings.state_dir,
                                            secrets=SecretResolver(self.settings.secrets_dir),
                                            hosts=HostAccess(self.settings.docker_host_list(),
                                                             self.settings.secrets_dir, self.settings.ssh_key,
                                                             self.settings.ssh_known_hosts,
                                                             self.settings.haproxy_image))
            return self._docker


    def _ecs(self, service: str, environment: str, env):
        from bot.infra.aws.ecr import EcrRegistry
        from bot.infra.aws.session import session_for
        from bot.infra.targets.ecs.group import ecs_target

        if env.ecs is None:
            raise ConfigError([ConfigProblem(None, f"environments.{environment}.ecs",
                                             "target: ecs needs an `ecs:` block (cluster, service, container)")])
        # Keyed by the settings too: a merged change of the ECS block takes effect at once, and
        # the settings only ever come from the production branch head (Pipeline.authority_config).
        key = (service, environment, env.ecs.model_dump_json())
        with self._lock:
            if key not in self._ecs_targets:
                # One service or several (ecs.services), through the assumed role when one is named.
                session = session_for(env.ecs.region, env.ecs.assume_role)
                self._ecs_targets[key] = ecs_target(env.ecs, session=session,
                                                    builder=EcrRegistry(session, region=env.ecs.region))
            return self._ecs_targets[key]


class LazyBuilder:
    def __init__(self, registry: str, settings: Settings | None = None):
        self.registry = registry
        self.settings = settings

    @cached_property
    def _builder(self):
        from bot.infra.targets.docker.build import DockerBuilder
        from bot.infra.targets.docker.registry import access_for

        return DockerBuilder(registry=self.registry, access=access_for(self.settings) if self.settings else None)

    def ensure_image(self, context, image, on_event):
        return self._builder.ensure_image(context, image, on_event)

    def image_exists(self, image) -> bool:
        return self._builder.image_exists(image)

    @property
    def registry_access(self):
        """How the registry is reached (TLS, credentials): the image-size preview reads manifests too."""
        return self._builder.access


class LazyChecker:
    """Repo checks in a container of the built image; the docker client is made on first use."""

    @cached_property
    def _runner(self):
        from bot.infra.check_runner import ContainerCheckRunner

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
    slack: object | None = None  # bot.notify.slack_reporter.SlackReporter, when SLACK_BOT_TOKEN is set

    # Seconds before a failed delivery's next try, by attempts so far (tests make it 0).
    retry_delay: Callable[[int], float] = field(default=lambda attempts: retry_delay(attempts))
    # Deliveries this process is handling now: its inbox poller and its queue threads may reach
    # one delivery at once, and a claim by this process counts as this thread's own (issue 13).
    _handling: set[str] = field(default_factory=set, repr=False)
    _handling_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def process_delivery(self, delivery_id: str) -> None:
        """Worker side of the inbox: dispatch a recorded delivery to its handlers, once. Never
        raises: a delivery whose handling fails is recorded, retried with backoff and, after
        `delivery_attempts` tries, dead-lettered, so it never holds back another."""
        with self._handling_lock:
            if delivery_id in self._handling:
                return  # another thread of this process has it in hand
            self._handling.add(delivery_id)
        try:
            with log_context(delivery_id=delivery_id):  # each line of its handling names it
                self._process_delivery(delivery_id)
        finally:
            with self._handling_lock:
                self._handling.discard(delivery_id)

    def _process_delivery(self, delivery_id: str) -> None:
        try:
            # A SIGKILLed worker's claim goes stale after 4 leases (120 s by default), then is retried.
            if not self.store.claim_delivery(delivery_id, self.pipeline.owner,
                                             stale_after=max(4 * self.settings.lease_seconds, 30),
                                             max_attempts=self.settings.delivery_attempts):
                return  # processed, dead, backing off, or another worker has it in hand
            row = self.store.delivery(delivery_id)
            outcome = self._dispatch(row)
            self.store.finish_delivery(delivery_id, outcome)  # should this fail, handlers are idempotent
        except Exception as exc:  # any failure is this delivery's alone
            self._delivery_failed(delivery_id, exc)
            return
        log.info("delivery %s (%s): %s", delivery_id, row.event, outcome)

    def process_due_deliveries(self, limit: int = 50) -> int:
        """One pass over the inbox: every due delivery, each on its own; returns how many."""
        due = self.store.unprocessed_deliveries(older_than=0, limit=limit)
        for delivery_id in due:
            self.process_delivery(delivery_id)
        return len(due)

    def _dispatch(self, row) -> str:
        """The handlers' outcome, or why the payload cannot be acted on (final: a retry would
        read the same bytes). Parsed exactly as intake parsed it (bot.webhook.parse)."""
        payload, problem = webhook.parse(row.payload.encode("utf-8"))
        if payload is None:
            log.warning("delivery %s (%s): %s", row.delivery_id, row.event, problem)
            return f"not acted on: {problem}"
        try:
            results = self.router.dispatch(row.event, row.action, payload, self.pipeline)
        except ValidationError as exc:
            first = exc.errors()[0]
            outcome = f"payload lacks what we need: {first['loc']} {first['msg']}"
            log.warning("delivery %s (%s): %s", row.delivery_id, row.event, outcome)
            return outcome
        return "; ".join(str(r) for r in results) or "no handler"

    def _delivery_failed(self, delivery_id: str, exc: Exception) -> None:
        error = _scrub(f"{type(exc).__name__}: {exc}", self.settings)[:500]
        try:
            dead = self.store.fail_delivery(delivery_id, error, self.settings.delivery_attempts, self.retry_delay)
        except Exception:  # the store itself is failing; the reconciler brings it back
            log.warning("delivery %s failed (%s), and recording that failed too", delivery_id, error, exc_info=True)
            return
        if dead:
            log.error("delivery %s dead-lettered after %d attempts: %s; `mainline deliveries retry %s` "
                      "replays it", delivery_id, self.settings.delivery_attempts, error, delivery_id)
        else:
            log.warning("delivery %s failed, will retry: %s", delivery_id, error)


def retry_delay(attempts: int) -> float:
    """Seconds before a failed delivery's next try: 2 s, doubling, at most five minutes."""
    return min(2.0 * 2 ** (attempts - 1), 300.0)


def _scrub(text: str, settings: Settings) -> str:
    """An error as it may be shown and stored: no configured secret, no credentials in a URL."""
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr) and len(value.get_secret_value()) >= 4:
            text = text.replace(value.get_secret_value(), "***")
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def poll_inbox(wired: Wired, stop: threading.Event, interval: float = 0.2) -> None:
    """The worker's side of the inbox: take recorded deliveries as they arrive. The web process
    only writes the inbox row; nothing else sits between GitHub and its 202."""
    passes = 0
    while not stop.wait(interval):
        try:
            wired.process_due_deliveries()
            passes += 1
        except Exception:  # the store is failing (a delivery never raises); try again
            log.exception("inbox pass failed; trying again")
            continue
        if passes % 10 == 0:
            try:
                wired.store.checkpoint()  # the web process's inbox writer leaves this to us
            except Exception as exc:  # e.g. the web process still migrating: next time
                log.warning("WAL checkpoint skipped: %s", exc)


def _require_current_schema(settings: Settings) -> None:
    from bot.infra.db.maintenance import DatabaseError, require_current
    from bot.settings import SettingsError

    try:
        require_current(settings.database_url)
    except DatabaseError as exc:
        raise SettingsError(f"mainline: {exc}") from exc


def git_credentials(settings: Settings, github):
    """With a GitHub App (GITHUB_TOKEN or not), git presents each repository's installation token
    (renewed as the API's is), and only to that repository on the configured GitHub."""
    from bot.infra.github.git_auth import credentials_for

    return credentials_for(settings, github)


def wire(settings: Settings, role: str = "all", reporters: list | None = None) -> Wired:
    """`role`: "worker" (runs deploys), "web" (answers requests), "cli", or "all" (tests, one
    process). Deploy cards are posted only where deploys run (not "web", nor "cli"), so two
    processes never race to post the same card; the web process still answers in Slack."""
    from handlers.github import router

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url)
    if settings.migrate_on_start:
        store.migrate()
    else:
        _require_current_schema(settings)
    queue = Queue(make_huey(settings.queue_url))
    token = settings.github_token.get_secret_value() if settings.github_token else None
    github = github_host(settings)
    slack = slack_for(settings, store)
    git = GitClient(settings.state_dir / "git", token=token, credentials=git_credentials(settings, github))
    if reporters is None:
        chat = slack if role in ("worker", "all") else None  # only a process that runs deploys reports them
        reporters = reporters_for(settings, github, chat, store=store, git=git)
    wiring = Wiring(
        store=store,
        git=git,
        builder=LazyBuilder(settings.registry, settings),
        target_for=Targets(settings),
        queue=queue,
        reporters=list(reporters),
        github=github,
        gates=Gatekeeper(github=github),
        checker=LazyChecker(),
        reverter=pull_request_reverter(github, settings) if github is not None else None,
        # Bisections try candidates as shadow replicas, with the release's env and secrets (bot/culprit).
        trial=DockerShadowTrial(settings.state_dir, SecretResolver(settings.secrets_dir)),
    )
    options = PipelineOptions(registry=settings.registry, state_dir=settings.state_dir,
                              lease_seconds=settings.lease_seconds, public_url=settings.public_url,
                              github_web_base=settings.github_web_base(),
                              sync_bound=settings.sync_bound_seconds,
                              prometheus_urls=settings.prometheus_url_list(),
                              docker_hosts=settings.docker_host_list())
    pipeline = Pipeline(wiring, options)
    wired = Wired(settings=settings, store=store, queue=queue, pipeline=pipeline, router=router, slack=slack)
    queue.bind(wired.process_delivery, pipeline.drive)
    return wired
