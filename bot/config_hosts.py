"""`hosts:` of a docker environment in deploy.yml: the Docker endpoints its replicas spread over.

The repository's text, so hostile: an endpoint is where Mainline sends root-equivalent Docker
API calls, so each one is checked here for its form, and, where it is used, against the
operator's allow-list (MAINLINE_DOCKER_HOSTS). TLS material is named as a directory under
MAINLINE_SECRETS_DIR (Docker's own layout: ca.pem, cert.pem, key.pem), never an absolute path.

    hosts:
      - unix:///var/run/docker.sock
      - url: tcp://10.0.0.5:2376
        tls: docker/host-b          # MAINLINE_SECRETS_DIR/docker/host-b/{ca,cert,key}.pem
      - ssh://deploy@10.0.0.6       # the key and known hosts: MAINLINE_SSH_KEY, MAINLINE_SSH_KNOWN_HOSTS
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from bot.config_values import printable, string_schema
from bot.domain.app import DockerHost

MAX_HOSTS = 20
_HOSTNAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,10}"
_ADDRESS = rf"(?:{_HOSTNAME}|\[[0-9A-Fa-f:.]{{2,45}}\])"
_PORT = r"[0-9]{1,5}"
UNIX_RE = r"^unix:///[A-Za-z0-9_.-]{1,100}(?:/[A-Za-z0-9_.-]{1,100}){0,10}$"
TCP_RE = rf"^tcp://{_ADDRESS}:{_PORT}$"
SSH_RE = rf"^ssh://[a-z_][a-z0-9_-]{{0,31}}@{_ADDRESS}(?::{_PORT})?$"
HOST_URL_RE = rf"(?:{UNIX_RE[1:-1]})|(?:{TCP_RE[1:-1]})|(?:{SSH_RE[1:-1]})"
TLS_DIR_RE = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}){0,4}$"
_URL = re.compile(HOST_URL_RE)
_TLS_DIR = re.compile(TLS_DIR_RE[1:-1])


def check_host_url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 300 or not _URL.fullmatch(value):
        raise ValueError("a Docker host is unix:///path, tcp://HOST:PORT (with tls:) or ssh://USER@HOST[:PORT]; "
                         f"got '{printable(str(value), 80)}'")
    if value.startswith("unix://") and ".." in value.split("/"):
        raise ValueError(f"a unix:// Docker host path may not hold '..': '{printable(value, 80)}'")
    port = value.rpartition("]")[2].rpartition(":")[2] if not value.startswith("unix://") else ""
    if port.isdigit() and not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} of Docker host '{printable(value, 80)}' is not 1-65535")
    return value


def check_tls_dir(value: Any) -> str:
    if not isinstance(value, str) or not _TLS_DIR.fullmatch(value) or ".." in value.split("/"):
        raise ValueError("tls names a directory under MAINLINE_SECRETS_DIR (letters, digits, '.', '_', '-', "
                         f"at most 5 parts, no '..'); got '{printable(str(value), 80)}'")
    return value


HOST_URL = Annotated[str, AfterValidator(check_host_url), string_schema(f"^(?:{HOST_URL_RE})$", 300)]
TLS_DIR = Annotated[str, AfterValidator(check_tls_dir), string_schema(TLS_DIR_RE, 520)]


class HostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HOST_URL
    tls: TLS_DIR | None = Field(default=None, description="tcp:// only: a directory under MAINLINE_SECRETS_DIR "
                                                           "holding ca.pem, cert.pem and key.pem")

    @model_validator(mode="after")
    def _tls(self) -> HostConfig:
        tcp = self.url.startswith("tcp://")
        if tcp and not self.tls:
            raise ValueError(f"{self.url} needs the mapping form with tls: (a directory under MAINLINE_SECRETS_DIR "
                             "holding ca.pem, cert.pem and key.pem): Docker's API in the clear gives root to "
                             "whoever reaches it")
        if not tcp and self.tls:
            raise ValueError(f"tls: applies to tcp:// hosts only, not {self.url}")
        return self


def _from_string(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


# In deploy.yml a host is an endpoint string, or a mapping when it needs tls:.
HostEntry = Annotated[HostConfig, BeforeValidator(_from_string), WithJsonSchema({"anyOf": [
    {"type": "string", "pattern": f"^(?:{HOST_URL_RE})$", "maxLength": 300},
    {"type": "object", "additionalProperties": False, "required": ["url"],
     "properties": {"url": {"type": "string", "pattern": f"^(?:{HOST_URL_RE})$", "maxLength": 300},
                    "tls": {"type": "string", "pattern": TLS_DIR_RE, "maxLength": 520}}}]})]


def check_hosts(hosts: list[HostConfig]) -> list[HostConfig]:
    urls = [h.url for h in hosts]
    twice = sorted({u for u in urls if urls.count(u) > 1})
    if twice:
        raise ValueError(f"Docker host {printable(twice[0], 80)} is listed twice")
    return hosts


HOSTS = Annotated[list[HostEntry], AfterValidator(check_hosts),
                  Field(max_length=MAX_HOSTS, description="Docker endpoints the replicas spread over "
                        "(each must be in MAINLINE_DOCKER_HOSTS); empty: the worker's own engine")]


class LoadBalancerConfig(BaseModel):
    """Where the environment's HAProxy runs: on one of its hosts, in a container (absent: next to
    the worker, as a process)."""

    model_config = ConfigDict(extra="forbid")

    host: HOST_URL = Field(description="one of hosts: the load balancer runs there, in a container of "
                                        "MAINLINE_HAPROXY_IMAGE, and binds listen on that host")


def check_load_balancer(lb: LoadBalancerConfig | None, hosts: list[HostConfig]) -> None:
    if lb is None:
        return
    if lb.host not in [h.url for h in hosts]:
        raise ValueError(f"load_balancer.host {printable(lb.host, 80)} is not one of hosts:")
    local = [h.url for h in hosts if h.url.startswith("unix://")]
    if local and not lb.host.startswith("unix://"):
        raise ValueError(f"a load balancer on {printable(lb.host, 80)} cannot reach the replicas of "
                         f"{printable(local[0], 80)}: a unix:// engine runs on the worker's machine")


def docker_hosts(hosts: list[HostConfig]) -> tuple[DockerHost, ...]:
    return tuple(DockerHost(h.url, h.tls or "") for h in hosts)


def refused_hosts(hosts: list[HostConfig], allowed: tuple[str, ...]) -> list[tuple[int, str]]:
    """(index, why) of each host the operator did not allow."""
    return [(i, f"Docker host {h.url} is not in MAINLINE_DOCKER_HOSTS: the operator lists the hosts a "
                "repository may deploy to")
            for i, h in enumerate(hosts) if h.url not in allowed]
