"""Several Docker hosts seen as one Docker client (a Fleet), and how each is reached.

An environment's `hosts:` names Docker endpoints: `unix://` (an engine on the worker's machine),
`tcp://` with mutual TLS (the material a directory under MAINLINE_SECRETS_DIR, Docker's layout:
ca.pem, cert.pem, key.pem), and `ssh://user@host` (Docker's `system dial-stdio` over SSH, with
the key MAINLINE_SSH_KEY and host keys checked strictly against MAINLINE_SSH_KNOWN_HOSTS). Only
endpoints the operator lists in MAINLINE_DOCKER_HOSTS are ever contacted.

The Fleet answers what the target asks of `client.containers`: `run` places a container on the
answering host with the fewest of its release's and its service's containers; `list` merges
every answering host's; `get` finds a container wherever it is. A host that does not answer a
ping is left out (its replicas are absent, so the roll-out or the reconciler starts them on the
others) and is named in `down` for the deploy to say so. Each container keeps its own host's
client, so removing, inspecting or waiting on it goes to the right engine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import paramiko
import requests
from docker.errors import DockerException, NotFound
from docker.transport.sshconn import SSHConnectionPool, SSHHTTPAdapter

from bot.domain.app import DockerHost
from bot.errors import InfrastructureFailure
from bot.infra.targets.docker.world import (
    HOST,
    LABEL_ENVIRONMENT,
    LABEL_ROLE,
    LABEL_SERVICE,
    LABEL_SHA,
    own_engine_address,
)

TIMEOUT = 60  # seconds for one Docker API call
PING_TIMEOUT = 3.0
FRESH = 1.0  # seconds a ping's answer is trusted
# A host whose look failed slowly (a timeout, not a refusal) is looked at again only after this:
# every thread of the worker waits while the hosts are looked at.
SLOW_RETRY = 15.0
SSH_SESSIONS = 6  # concurrent Docker API calls over one SSH connection (sshd allows 10 sessions)
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
# What a host that does not answer raises, by the way it is reached.
UNREACHABLE = (DockerException, requests.RequestException, OSError, paramiko.SSHException)


class _SshAdapter(SSHHTTPAdapter):
    """docker-py's paramiko transport with our key and known hosts (it reads only ~/.ssh), host
    keys checked strictly, connected on first use and again after the connection drops."""

    def __init__(self, url: str, key: Path | None, known_hosts: Path | None, timeout: int):
        self._key, self._known_hosts = key, known_hosts
        super().__init__(url, timeout=timeout, shell_out=False)

    def _create_paramiko_client(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.ssh_client = paramiko.SSHClient()
        if self._known_hosts is not None:
            self.ssh_client.load_host_keys(str(self._known_hosts))
        else:
            self.ssh_client.load_system_host_keys()
        self.ssh_client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self.ssh_params = {"hostname": parts.hostname, "port": parts.port or 22, "username": parts.username,
                           "timeout": 10, "banner_timeout": 10, "auth_timeout": 10}
        if self._key is not None:
            self.ssh_params.update(key_filename=str(self._key), look_for_keys=False, allow_agent=False)

    def _connect(self) -> None:
        """Connected when first used (get_connection), so a host that is down is only absent."""

    def get_connection(self, url, proxies=None):
        with self.pools.lock:
            transport = self.ssh_client.get_transport()
            if transport is None or not transport.is_active():
                self.pools.clear()
                self.ssh_client.close()
                self.ssh_client.connect(**self.ssh_params)
            # One pool for the host, at most SSH_SESSIONS connections, each an SSH session: docker-py
            # keys a pool per URL and lets them grow, which passes sshd's MaxSessions (10) and has
            # every further channel refused.
            pool = self.pools.get("ssh")
            if pool is None:
                pool = SSHConnectionPool(ssh_client=self.ssh_client, timeout=self.timeout,
                                         maxsize=SSH_SESSIONS, host=self.ssh_host)
                pool.block = True
                self.pools["ssh"] = pool
            return pool


@dataclass(frozen=True)
class HostAccess:
    """The operator's side of `hosts:`: which endpoints are allowed, where TLS material and the
    SSH key live. Builds a client for an allowed host."""

    allowed: tuple[str, ...] = ()
    secrets_dir: Path | None = None
    ssh_key: Path | None = None
    ssh_known_hosts: Path | None = None
    haproxy_image: str | None = None  # MAINLINE_HAPROXY_IMAGE: a load balancer on a Docker host

    def check(self, hosts: tuple[DockerHost, ...], lb_host: str = "") -> None:
        """Refuse, before anything changes, a host the operator did not allow or whose TLS
        material is not there (the message names files, never their contents)."""
        for host in hosts:
            if host.url not in self.allowed:
                raise InfrastructureFailure(f"Docker host {host.url} is not in MAINLINE_DOCKER_HOSTS; nothing was "
                                            "changed", kind="docker_hosts", restore=False)
            if host.url.startswith("tcp://"):
                missing = [name for name in TLS_FILES if not (self.tls_dir(host) / name).is_file()]
                if missing:
                    raise InfrastructureFailure(
                        f"Docker host {host.url}: {', '.join(missing)} missing from {host.tls} under "
                        "MAINLINE_SECRETS_DIR; nothing was changed", kind="docker_hosts", restore=False)
        if any(h.url.startswith("ssh://") for h in hosts):
            self._check_ssh_files()
        if lb_host and not self.haproxy_image:
            raise InfrastructureFailure("load_balancer.host needs MAINLINE_HAPROXY_IMAGE (see "
                                        "deploy/haproxy/Dockerfile); nothing was changed", kind="docker_hosts",
                                        restore=False)

    def _check_ssh_files(self) -> None:
        """The key and the known hosts are the operator's: there, readable, and never under
        MAINLINE_SECRETS_DIR, where a repository's `file:` secrets read (the key is a login)."""
        root = self.secrets_dir.resolve() if self.secrets_dir else None
        for setting, path in (("MAINLINE_SSH_KEY", self.ssh_key), ("MAINLINE_SSH_KNOWN_HOSTS", self.ssh_known_hosts)):
            if path is None:
                continue
            if not path.is_file():
                raise InfrastructureFailure(f"{setting} {path} is not a readable file; nothing was changed",
                                            kind="docker_hosts", restore=False)
            if setting == "MAINLINE_SSH_KEY" and root is not None and path.resolve().is_relative_to(root):
                raise InfrastructureFailure("MAINLINE_SSH_KEY lies under MAINLINE_SECRETS_DIR, where apps read "
                                            "file: secrets: move it out; nothing was changed",
                                            kind="docker_hosts", restore=False)

    def tls_dir(self, host: DockerHost) -> Path:
        root = (self.secrets_dir or Path("/nonexistent")).resolve()
        path = (root / host.tls).resolve()
        if not host.tls or not path.is_relative_to(root):
            raise InfrastructureFailure(f"Docker host {host.url}: tls must name a directory under "
                                        "MAINLINE_SECRETS_DIR", kind="docker_hosts", restore=False)
        return path

    def connect(self, host: DockerHost) -> Any:
        """A DockerClient for `host`, its API version agreed with the engine (so a host that is
        down raises here)."""
        self.check((host,))
        if host.url.startswith("ssh://"):
            client = docker.DockerClient(base_url=host.url, use_ssh_client=True, timeout=TIMEOUT,
                                         version=docker.constants.DEFAULT_DOCKER_API_VERSION)
            adapter = _SshAdapter(host.url, self.ssh_key, self.ssh_known_hosts, TIMEOUT)
            client.api.mount("http+docker://ssh", adapter)
            client.api._custom_adapter = adapter
        elif host.url.startswith("tcp://"):
            tls_dir = self.tls_dir(host)
            tls = docker.tls.TLSConfig(client_cert=(str(tls_dir / "cert.pem"), str(tls_dir / "key.pem")),
                                       ca_cert=str(tls_dir / "ca.pem"), verify=True)
            client = docker.DockerClient(base_url=host.url, tls=tls, timeout=TIMEOUT,
                                         version=docker.constants.DEFAULT_DOCKER_API_VERSION)
        else:
            client = docker.DockerClient(base_url=host.url, timeout=TIMEOUT,
                                         version=docker.constants.DEFAULT_DOCKER_API_VERSION)
        # The engine's CA only: requests would otherwise take REQUESTS_CA_BUNDLE (and proxies) from
        # the environment over the CA given here.
        client.api.trust_env = False
        try:
            client.api._version = client.api._retrieve_server_version()
        except BaseException:
            client.close()
            raise
        return client


class Fleet:
    """Several Docker hosts as one client (see the module's text)."""

    def __init__(self, hosts: tuple[DockerHost, ...], access: HostAccess, former: Callable[[], Any] | None = None):
        self.hosts = hosts
        self.access = access
        # The worker's own engine, where an environment ran before it listed hosts: looked at
        # (its replicas retire as any old release's do), never placed on unless listed.
        self._former = former
        self.containers = _Containers(self)
        self._clients: dict[str, Any] = {}
        self._ids: dict[str, str] = {}  # url -> the engine's identity: one engine under two names is one host
        self._live: list[tuple[DockerHost, Any]] = []
        self._seen: list[Any] = []  # the clients to look at: the live hosts', and the former engine's
        self._checked = 0.0
        self._lock = threading.Lock()
        self.down: dict[str, str] = {}  # url -> why, at the last look
        self._retry_at: dict[str, float] = {}  # url -> when a host that failed slowly is looked at again

    def live(self) -> list[tuple[DockerHost, Any]]:
        """The hosts that answer a ping now (looked at most once a second), in their order."""
        with self._lock:
            if time.monotonic() - self._checked < FRESH and self._live:
                return list(self._live)
            live: list[tuple[DockerHost, Any]] = []
            ids: set[str] = set()
            for host in self.hosts:
                if host.url in self.down and time.monotonic() < self._retry_at.get(host.url, 0.0):
                    continue
                started = time.monotonic()
                try:
                    client = self._answering(host.url, functools.partial(self.access.connect, host))
                except UNREACHABLE as exc:
                    self.down[host.url] = _short(exc)
                    if time.monotonic() - started > FRESH:
                        self._retry_at[host.url] = time.monotonic() + SLOW_RETRY
                    continue
                self.down.pop(host.url, None)
                if self._ids[host.url] not in ids:
                    ids.add(self._ids[host.url])
                    live.append((host, client))
            seen = [client for _, client in live]
            if self._former is not None and time.monotonic() >= self._retry_at.get("", 0.0):
                started = time.monotonic()
                try:
                    former = self._answering("", self._former)
                    if self._ids[""] not in ids:
                        seen.append(former)
                except UNREACHABLE:
                    if time.monotonic() - started > FRESH:
                        self._retry_at[""] = time.monotonic() + SLOW_RETRY
            self._live, self._seen, self._checked = live, seen, time.monotonic()
        if not live:
            raise DockerException("no Docker host answers: " + "; ".join(f"{u}: {w}" for u, w in self.down.items()))
        return list(live)

    def seen(self) -> list[Any]:
        """The clients whose containers count as this environment's: live hosts, former engine."""
        self.live()
        with self._lock:
            return list(self._seen)

    def _answering(self, url: str, connect: Callable[[], Any]) -> Any:
        """The client of `url` (made once), after a ping; forgotten when it does not answer."""
        try:
            unix_answers(url)
            client = self._clients.get(url) or connect()
            self._clients[url] = client
            client.api._get(client.api._url("/_ping"), timeout=PING_TIMEOUT).raise_for_status()
            if url not in self._ids:
                # Engines on one machine share an ID (dockerd's key.json): the data root and the
                # machine's name tell them apart.
                info = client.api.info()
                self._ids[url] = f"{info.get('ID')}|{info.get('DockerRootDir')}|{info.get('Name')}"
        except UNREACHABLE:
            self._forget(url)
            raise
        return client

    def _forget(self, url: str) -> None:
        self._ids.pop(url, None)
        client = self._clients.pop(url, None)
        if client is not None:
            with contextlib.suppress(*UNREACHABLE):
                client.close()

    def client_for(self, host: DockerHost) -> Any:
        """The client of `host` if it answers (a DockerException, so transient, if not)."""
        for answering, client in self.live():
            if answering == host:
                return client
        raise DockerException(f"Docker host {host.url} does not answer: {self.down.get(host.url, '')}")

    def remote_addresses(self) -> list[str]:
        """The answering hosts' addresses that are not this machine's loopback."""
        return sorted({h.address for h, _ in self.live() if h.address != HOST})

    def url_of(self, container: Any) -> str:
        """The endpoint of the host this container runs on (the own engine's: "")."""
        return next((h.url for h in self.hosts if self._clients.get(h.url) is container.client), "")

    def address_of(self, container: Any) -> str:
        """The address the load balancer reaches this container's host by."""
        for host in self.hosts:
            if self._clients.get(host.url) is container.client:
                return host.address
        return own_engine_address()  # the former engine's

    def place(self, labels: dict[str, str]) -> Any:
        """The client of the answering host with the fewest containers of this release, then of
        this service's role, in the hosts' order."""
        live = self.live()
        if not labels.get(LABEL_SERVICE):
            return live[0][1]
        same = [f"{LABEL_SERVICE}={labels[LABEL_SERVICE]}", f"{LABEL_ENVIRONMENT}={labels.get(LABEL_ENVIRONMENT, '')}"]
        if labels.get(LABEL_ROLE):
            same.append(f"{LABEL_ROLE}={labels[LABEL_ROLE]}")
        best, best_key = live[0][1], None
        for i, (_, client) in enumerate(live):
            found = client.containers.list(all=True, ignore_removed=True, filters={"label": same})
            release = sum(1 for c in found if c.labels.get(LABEL_SHA) == labels.get(LABEL_SHA))
            key = (release, len(found), i)
            if best_key is None or key < best_key:
                best, best_key = client, key
        return best

    def close(self) -> None:
        with self._lock:
            for url in list(self._clients):
                self._forget(url)


class _Containers:
    """`client.containers` of a Fleet."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet

    def list(self, **kwargs) -> list[Any]:
        return [c for client in self.fleet.seen() for c in client.containers.list(**kwargs)]

    def get(self, name: str) -> Any:
        for client in self.fleet.seen():
            try:
                return client.containers.get(name)
            except NotFound:
                continue
        raise NotFound(f"No such container: {name} on any answering Docker host")

    def run(self, image: str, **kwargs) -> Any:
        return self.fleet.place(kwargs.get("labels") or {}).containers.run(image, **kwargs)


def unix_answers(url: str) -> None:
    """For a unix:// engine (or "", the own engine as DOCKER_HOST names it): connect once with a
    socket closed after, so an engine that is gone raises an OSError here. docker-py leaves the
    socket of a refused connect open, one per ping of a host that is down."""
    if not url:
        url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not url.startswith("unix://"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(PING_TIMEOUT)
        sock.connect(url.removeprefix("unix://"))


def _short(exc: BaseException) -> str:
    """Why a host did not answer, in a few words: the system's own reason where one is buried in
    docker-py's and urllib3's wrapping ("[Errno 111] Connection refused"), else the first line."""
    text = str(exc).strip()
    reason = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text) or re.search(
        r"(certificate verify failed[^'\")\]]*|not found in known_hosts|Authentication failed|timed out)", text)
    if reason:
        return reason.group(0).strip()[:200]
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.removeprefix("Error while fetching server API version: ")[:200]
