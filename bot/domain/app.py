"""What an app runs as, beyond its image: plain env, secret references (never values), process
roles, per-container resources, TLS at the load balancer, and a one-off release command.
Built from the production config (bot/config_app.py); targets read it from the RolloutPlan."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CPUS = 1.0
DEFAULT_MEMORY = 512 * 1024 ** 2


@dataclass(frozen=True)
class Role:
    name: str
    command: tuple[str, ...] | None = None  # None: the image's own CMD
    replicas: int = 1
    http: bool = False  # behind the load balancer (exactly one role is)
    min_ready: float = 5.0  # seconds running before a role without a HEALTHCHECK counts as ready
    stop_signal: str = "SIGTERM"
    stop_grace: float = 10.0


@dataclass(frozen=True)
class Tls:
    certificate: str  # a file name under MAINLINE_SECRETS_DIR (PEM: certificate and key)
    redirect: bool = False
    http_listen: str | None = None  # where plain HTTP is answered with a redirect


@dataclass(frozen=True)
class DockerHost:
    """A Docker endpoint: unix:///path, tcp://HOST:PORT (TLS material in `tls`, a directory under
    MAINLINE_SECRETS_DIR) or ssh://USER@HOST[:PORT]."""

    url: str
    tls: str = ""

    @property
    def address(self) -> str:
        """Where its replicas answer, as the load balancer reaches them: a unix socket's engine
        runs here; a tcp:// or ssh:// engine's replicas on that host."""
        if self.url.startswith("unix://"):
            return "127.0.0.1"
        netloc = self.url.split("://", 1)[1].rpartition("@")[2]
        if netloc.startswith("["):
            return netloc[1: netloc.index("]")]
        return netloc.partition(":")[0]


@dataclass(frozen=True)
class Release:
    command: tuple[str, ...]
    approval: bool = False
    timeout: float = 600.0


@dataclass(frozen=True)
class AppSpec:
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, str], ...] = ()  # (NAME, reference)
    roles: tuple[Role, ...] = ()  # empty: one web role with the image's CMD
    cpus: float = DEFAULT_CPUS
    memory: int = DEFAULT_MEMORY
    tls: Tls | None = None
    release: Release | None = None
    hosts: tuple[DockerHost, ...] = ()  # empty: the worker's own engine
    lb_host: str = ""  # the url of the host whose container runs HAProxy; empty: a process by the worker

    def web(self, replicas: int) -> Role:
        """The role behind the load balancer."""
        return next((r for r in self.roles if r.http), Role("web", replicas=replicas, http=True))

    @property
    def others(self) -> tuple[Role, ...]:
        """Roles without traffic, replaced one container at a time."""
        return tuple(r for r in self.roles if not r.http)
