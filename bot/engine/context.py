"""What every part of the engine and the use cases shares: the ports, the options, who we are,
and the config a service runs under (always its production branch head's)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bot.canary.config import canary_policy
from bot.config import CONFIG_PATH, ConfigError, ConfigProblem, DeployConfig, line_of, parse_config
from bot.config_hosts import refused_hosts
from bot.domain import RolloutPlan
from bot.domain.records import ServiceRecord
from bot.errors import NotFoundError
from bot.ports import DeployStore, Wiring

log = logging.getLogger("mainline.pipeline")


@dataclass(frozen=True)
class PipelineOptions:
    registry: str = "127.0.0.1:5000"
    state_dir: Path = Path(".mainline")
    lease_seconds: float = 30.0
    public_url: str = "http://127.0.0.1:8000"
    # A recorded delivery whose task never ran (lost with a killed worker) is queued again after this.
    redeliver_after: float = 30.0
    # Clone URLs are built from this and a repository's full name, never taken from a payload.
    github_web_base: str = "https://github.com"
    # How long the production branch head may go unaccounted for before the watchdog says so.
    sync_bound: float = 300.0
    # The Prometheus servers a repository's `prometheus: {url}` may name (MAINLINE_PROMETHEUS_URLS).
    prometheus_urls: tuple[str, ...] = ("http://127.0.0.1:9090",)
    # The Docker hosts a repository's `hosts:` may name (MAINLINE_DOCKER_HOSTS).
    docker_hosts: tuple[str, ...] = ()


# Docker's client TLS layout: the `tls:` directories of `hosts:` under MAINLINE_SECRETS_DIR hold these.
DOCKER_TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


def _docker_material(env: Any) -> list[tuple[str, str]]:
    """(key, why) of each `file:` secret naming a Docker host's TLS material. That material sits
    under MAINLINE_SECRETS_DIR, where `secrets: {X: file:...}` reads: without this, any repository
    could hand a Docker host's client key (root on that host) to its own app. Refused by name
    (normalised: `./` and a trailing `/` do not hide it), and anything under a `tls:` this config names."""
    tls_dirs = [PurePosixPath(h.tls) for h in env.hosts if h.tls]
    found = []
    for key, ref in env.secrets.items():
        kind, _, name = ref.partition(":")
        path = PurePosixPath(name)
        if kind == "file" and (path.name in DOCKER_TLS_FILES or any(path.is_relative_to(d) for d in tls_dirs)):
            found.append((key, f"{ref} names a Docker host's TLS material ({', '.join(DOCKER_TLS_FILES)} "
                               "under MAINLINE_SECRETS_DIR): root on that host is never an app's secret"))
    return found


class Context:
    """The ports (`w`, shared and mutable: tests swap an adapter on a running pipeline), the
    options and this process's owner name."""

    def __init__(self, wiring: Wiring, options: PipelineOptions, owner: str | None = None):
        self.w = wiring
        self.opts = options
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    @property
    def store(self) -> DeployStore:
        return self.w.store

    def service_by_id(self, service_id: int) -> Any:
        return next(s for s in self.store.services() if s.id == service_id)

    def enqueue_drive(self, service: str, environment: str) -> None:
        if self.w.queue is not None:
            self.w.queue.drive(service, environment)

    # -- configs ---------------------------------------------------------------------------------

    def config_at(self, clone_url: str, sha: str) -> DeployConfig:
        text = self.w.git.read_file(clone_url, sha, CONFIG_PATH)
        if text is None:
            raise ConfigError([])
        config = parse_config(text)
        # What only this installation knows: the Prometheus servers and Docker hosts its operator
        # allows. Said on the commit's config check, not first when a deploy would start.
        refused = [ConfigProblem(line_of(text, ("environments", name, "prometheus", "url")),
                                 f"environments.{name}.prometheus.url", policy.refused)
                   for name, env in config.environments.items()
                   if (policy := canary_policy(env, self.opts.prometheus_urls)) is not None and policy.refused]
        refused += [ConfigProblem(line_of(text, ("environments", name, "hosts", i)),
                                  f"environments.{name}.hosts.{i}", why)
                    for name, env in config.environments.items()
                    for i, why in refused_hosts(env.hosts, self.opts.docker_hosts)]
        refused += [ConfigProblem(line_of(text, ("environments", name, "secrets", key)),
                                  f"environments.{name}.secrets.{key}", why)
                    for name, env in config.environments.items()
                    for key, why in _docker_material(env)]
        if refused:
            raise ConfigError(refused)
        return config

    def authority_config(self, service: ServiceRecord) -> DeployConfig:
        """The config a service runs under: its production branch head's, as last recorded."""
        if service.config_text:
            try:
                return DeployConfig.model_validate_json(service.config_text)
            except ValueError:
                # Recorded under older, looser rules: read the head again, and let a config
                # that no longer validates fail as a config error does.
                log.warning("the recorded config of %s no longer validates; reading its head", service.name)
        return self.service_config(service.name)

    def service_config(self, service: str) -> DeployConfig:
        """The config on the production branch head: who may deploy is decided by what was
        merged, never by a branch someone pushed. Recorded as the service's authority."""
        svc = self.store.service(service)
        head = self.w.git.head(svc.clone_url, svc.branch)
        if head is None:
            raise NotFoundError(f"{svc.repo} has no branch {svc.branch}")
        config = self.config_at(svc.clone_url, head)
        if config.service == svc.name:
            self.store.upsert_service(svc.name, svc.repo, svc.clone_url, config.branch,
                                      config_text=config.model_dump_json(), config_sha=head)
            self.store.set_head(svc.id, head)
        return config

    # -- what a rollout needs ------------------------------------------------------------------------

    def plan(self, service: ServiceRecord, environment: str, config: DeployConfig, sha: str,
             image: str) -> RolloutPlan:
        env = config.environments[environment]
        app = env.app_spec()
        return RolloutPlan(service=service.name, environment=environment, sha=sha, image=image,
                           replicas=app.web(env.replicas).replicas, strategy=env.strategy,
                           health=config.health.policy(), listen=env.listen, app=app,
                           canary=canary_policy(env, self.opts.prometheus_urls))

    def image(self, service: str, sha: str) -> str:
        return f"{self.opts.registry}/{service}:{sha}"
