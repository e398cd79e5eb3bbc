"""What a Docker target observes and where it may write: its containers and load-balancer
servers (a World), the names that become container names and path parts, and which errors are
the machinery's own (transient) rather than evidence about a release."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import requests
from docker.errors import DockerException

from bot.domain.app import DockerHost
from bot.errors import MainlineError, TransientError
from bot.infra.targets.docker.haproxy import HAProxy, HAProxyError, Server
from bot.infra.targets.docker.tls import TlsSettings

LABEL_SERVICE = "mainline.service"
LABEL_ENVIRONMENT = "mainline.environment"
LABEL_SHA = "mainline.sha"
LABEL_PORT = "mainline.port"
LABEL_ROLE = "mainline.role"
LABEL_SPEC = "mainline.spec"
# A one-off container (a check, the release command, a shadow trial) sets these empty: Docker
# copies an image's own LABELs onto its containers, and a branch's Dockerfile could otherwise
# label one as another service's replica, which that service's rollout or repair would admit.
NOT_A_REPLICA = {label: "" for label in (LABEL_SERVICE, LABEL_ENVIRONMENT, LABEL_SHA, LABEL_PORT, LABEL_ROLE,
                                         LABEL_SPEC)}
STALE = "~stale"  # appended to the sha of a container that runs with another spec
HOST = "127.0.0.1"


def own_engine_address() -> str:
    """Where the replicas of the engine DOCKER_HOST names answer: this machine for a unix socket
    (the default), that host for tcp:// or ssh://."""
    url = os.environ.get("DOCKER_HOST", "")
    if not url.startswith(("tcp://", "ssh://")):
        return HOST
    scheme_and_host = "/".join(url.split("/", 3)[:3])  # a path after the host is not its address
    return DockerHost(scheme_and_host).address or HOST
# Names become container names, label values and path parts: the config schema's rule, again here.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,30}")


class UnsafeNameError(MainlineError):
    """A service or environment name that could leave the state dir or clash with another's."""


@contextmanager
def infrastructure(what: str) -> Iterator[None]:
    """Docker and load-balancer errors say nothing about the release: make them transient."""
    try:
        yield
    except HAProxyError as exc:  # a RolloutError by inheritance, but never evidence
        raise TransientError(f"{what}: load balancer: {exc}") from exc
    except (DockerException, requests.RequestException, OSError, paramiko.SSHException) as exc:
        raise TransientError(f"{what}: Docker: {exc}") from exc


def load_balancer_in(state_dir: Path, service: str, environment: str, listen: str = "",
                     tls: TlsSettings | None = None) -> HAProxy:
    """The service's HAProxy, once its names are known to keep its files inside the state dir."""
    for kind, name in (("service", service), ("environment", environment)):
        if not NAME.fullmatch(name or ""):
            raise UnsafeNameError(f"{kind} name {name[:40]!r} is not allowed: use lowercase letters, "
                                  "digits, '-' and '_' (at most 31), starting with a letter or digit")
    lb = HAProxy(state_dir, service, environment, listen, tls=tls)
    root = (Path(state_dir) / "haproxy").resolve()
    inside = [lb.dir.resolve() == root / f"{service}.{environment}", lb.config_path.resolve().is_relative_to(root),
              lb.pid_path.resolve().is_relative_to(root),
              # A deep state dir moves the socket to /tmp under a digest: no name in that path.
              lb.socket_path.resolve().is_relative_to(root) or lb.socket_path.name.startswith("mainline-haproxy-")]
    if not all(inside):
        raise UnsafeNameError(f"the load balancer files of {service}/{environment} would leave {root}")
    return lb


@dataclass(frozen=True)
class Wanted:
    """What the web role's containers of a release carry: its role name, sha and spec digest."""

    role: str
    sha: str
    spec: str  # empty: any spec will do (a repair)
    image: str = ""


@dataclass(frozen=True)
class Instance:
    """A container of ours, as observed."""

    name: str
    sha: str
    port: int
    image: str
    running: bool
    container: Any  # docker.models.containers.Container
    host: str = HOST  # where the load balancer reaches it: its Docker host's address

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class World:
    instances: list[Instance]
    servers: dict[str, Server]

    def instance(self, name: str) -> Instance | None:
        return next((i for i in self.instances if i.name == name), None)

    def serving(self, sha: str | None = None, other_than: str | None = None) -> list[Server]:
        """Servers taking traffic, of `sha`, or of any release but `other_than`."""
        result = []
        for server in self.servers.values():
            inst = self.instance(server.name)
            server_sha = inst.sha if inst else None
            if not server.serving:
                continue
            if sha is not None and server_sha != sha:
                continue
            if other_than is not None and server_sha == other_than:
                continue
            result.append(server)
        return result


def observe(client, service: str, environment: str, lb: HAProxy, wanted: Wanted | None = None) -> World:
    """Our web containers (by label) and the load balancer's servers, as they are now. With
    `wanted`, only the web role's containers count, and one of the wanted sha that runs with
    another spec (a rotated secret) is seen as another release."""
    # ignore_removed: a container removed between Docker's list and its inspect is simply gone.
    containers = client.containers.list(
        all=True, ignore_removed=True,
        filters={"label": [f"{LABEL_SERVICE}={service}", f"{LABEL_ENVIRONMENT}={environment}"]})
    instances = []
    # A Fleet knows each container's host; the own engine's are where DOCKER_HOST points.
    address_of = getattr(client, "address_of", lambda _: own_engine_address())
    for c in containers:
        labels = c.labels
        sha = labels.get(LABEL_SHA, "")
        if wanted is not None:
            if labels.get(LABEL_ROLE, wanted.role) != wanted.role:
                continue  # another role's container: rolled in its own turn
            image = c.attrs.get("Config", {}).get("Image", "")
            if image and image == wanted.image:
                sha = wanted.sha  # a release of the same image (a revert of a revert): nothing to replace
            if sha == wanted.sha and wanted.spec and labels.get(LABEL_SPEC) != wanted.spec:
                sha += STALE
        instances.append(Instance(c.name, sha, int(labels.get(LABEL_PORT, "0")),
                                  c.attrs.get("Config", {}).get("Image", ""), c.status == "running", c,
                                  address_of(c)))
    servers = {s.name: s for s in lb.servers()} if lb.running() else {}
    return World(sorted(instances, key=lambda i: i.name), servers)
