"""The app keys of an environment in deploy.yml: env, secrets, roles, resources, tls, release.

All of it is the repository's text, so hostile: env names and values reach a container's
environment, secret references name what the bot reads from AWS or from MAINLINE_SECRETS_DIR,
commands reach Docker, the certificate's name is written into haproxy.cfg. Each is bounded and
checked here; `app_spec` turns them into the domain's AppSpec.
"""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bot.config_hosts import HOSTS, LoadBalancerConfig, check_load_balancer, docker_hosts
from bot.config_values import (
    CPUS_MAX,
    CPUS_MIN,
    LISTEN,
    MEMORY,
    NAME,
    DurationRange,
    check_duration,
    parse_duration,
    parse_memory,
    printable,
    string_schema,
)
from bot.domain.app import AppSpec, Release, Role, Tls

ENV_NAME_RE = r"^[A-Z_][A-Z0-9_]{0,63}$"
# Names the target sets itself, or that change how the container's programs load code.
RESERVED = frozenset({"PORT", "PATH", "HOME", "HOSTNAME", "LD_PRELOAD", "LD_LIBRARY_PATH"})
ENV_VALUE_MAX = 4096
FILE_NAME_RE = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}){0,4}$"
SECRET_REF_RE = (r"^(aws-secretsmanager:[A-Za-z0-9/_+=.@-]{1,512}"
                 r"|aws-ssm:/?[A-Za-z0-9_.-][A-Za-z0-9/_.-]{0,1010}"
                 r"|file:[A-Za-z0-9_][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}){0,4})$")
COMMAND_MAX = 1024
MIN_READY = DurationRange(0.0, 600.0)
STOP_GRACE = DurationRange(0.0, 600.0)
RELEASE_TIMEOUT = DurationRange(1.0, 3600.0)
SIGNALS = Literal["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL"]

_ENV_NAME = re.compile(ENV_NAME_RE[1:-1])
_FILE_NAME = re.compile(FILE_NAME_RE[1:-1])
_SECRET_REF = re.compile(SECRET_REF_RE[1:-1])


def _show(value: Any, limit: int = 60) -> str:
    # `printable` has escaped control characters already: quote, never repr() them a second time.
    return f"'{printable(str(value), limit)}'"


def check_env_name(value: str) -> str:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise ValueError(f"environment names are upper-case letters, digits and '_' (at most 64), "
                         f"not starting with a digit; got {_show(value)}")
    if value in RESERVED or value.startswith("MAINLINE_"):
        raise ValueError(f"{value} is set by Mainline or the system and cannot be configured")
    return value


def check_env_value(value: str) -> str:
    if len(value) > ENV_VALUE_MAX:
        raise ValueError(f"at most {ENV_VALUE_MAX} characters; got {len(value)}")
    if any(not c.isprintable() for c in value):
        raise ValueError(f"control characters are not allowed: {_show(value)}")
    return value


def check_file_name(value: str) -> str:
    """A relative path under MAINLINE_SECRETS_DIR: no `..`, no leading `/`, no hidden parts."""
    if not isinstance(value, str) or not _FILE_NAME.fullmatch(value) or ".." in value.split("/"):
        raise ValueError(f"a file under MAINLINE_SECRETS_DIR: letters, digits and '._-', parts separated "
                         f"by '/', no '..'; got {_show(value)}")
    return value


def check_secret_ref(value: str) -> str:
    if not isinstance(value, str) or not _SECRET_REF.fullmatch(value):
        raise ValueError("a secret is a reference: aws-secretsmanager:NAME, aws-ssm:/PATH or file:NAME "
                         f"(under MAINLINE_SECRETS_DIR); got {_show(value, 20)}")
    if value.startswith("file:"):
        check_file_name(value.removeprefix("file:"))
    return value


def check_command(value: str) -> str:
    if len(value) > COMMAND_MAX:
        raise ValueError(f"a command is at most {COMMAND_MAX} characters; got {len(value)}")
    if any(not c.isprintable() for c in value):
        raise ValueError(f"control characters are not allowed in a command: {_show(value)}")
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"the command does not parse as shell words: {exc}") from None
    if not words or len(words) > 100:
        raise ValueError("a command is 1 to 100 words")
    return value


ENV_NAME = Annotated[str, AfterValidator(check_env_name), string_schema(ENV_NAME_RE)]
ENV_VALUE = Annotated[str, AfterValidator(check_env_value), string_schema(r"^[^\x00-\x1f\x7f]*$", ENV_VALUE_MAX)]
SECRET_REF = Annotated[str, AfterValidator(check_secret_ref), string_schema(SECRET_REF_RE, 1024)]
FILE_NAME = Annotated[str, AfterValidator(check_file_name), string_schema(FILE_NAME_RE, 520)]
COMMAND = Annotated[str, AfterValidator(check_command), string_schema(r"^[^\x00-\x1f\x7f]+$", COMMAND_MAX)]
Duration = str | float


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RoleConfig(_Model):
    command: COMMAND | None = Field(default=None, description="the image's CMD when absent")
    replicas: int = Field(default=1, ge=0, le=50)
    http: bool = Field(default=False, description="behind the load balancer; exactly one role has it")
    min_ready: Duration = Field(default="5s", description="running this long counts as ready without a "
                                                          "HEALTHCHECK; at most 10m")
    stop_signal: SIGNALS = "SIGTERM"
    stop_grace: Duration = Field(default="10s", description="at most 10m")

    @field_validator("min_ready")
    @classmethod
    def _min_ready(cls, value: Any) -> Any:
        return check_duration(value, MIN_READY)

    @field_validator("stop_grace")
    @classmethod
    def _stop_grace(cls, value: Any) -> Any:
        return check_duration(value, STOP_GRACE)


class Resources(_Model):
    cpus: float = Field(default=1.0, ge=CPUS_MIN, le=CPUS_MAX)
    memory: MEMORY = "512m"


class TlsConfig(_Model):
    certificate: FILE_NAME = Field(description="PEM (certificate and key) under MAINLINE_SECRETS_DIR")
    redirect: bool = False
    http_listen: LISTEN | None = Field(default=None, description="plain HTTP address that redirects to HTTPS")

    @model_validator(mode="after")
    def _redirect_needs_address(self) -> TlsConfig:
        if self.redirect and not self.http_listen:
            raise ValueError("tls.redirect needs tls.http_listen: the address where HTTP is answered")
        return self


class ReleaseConfig(_Model):
    command: COMMAND
    approval: Literal["required", "none"] = "none"
    timeout: Duration = Field(default="10m", description="at most 1h")

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        return check_duration(value, RELEASE_TIMEOUT)


class AppKeys(_Model):
    """Mixed into an environment: the keys of a real app."""

    env: dict[ENV_NAME, ENV_VALUE] = Field(default_factory=dict, max_length=100,
                                           description="plain values, visible in previews")
    secrets: dict[ENV_NAME, SECRET_REF] = Field(default_factory=dict, max_length=50,
                                                description="references only, never values")
    roles: dict[NAME, RoleConfig] = Field(default_factory=dict, max_length=10)
    resources: Resources = Field(default_factory=Resources)
    tls: TlsConfig | None = None
    release: ReleaseConfig | None = None
    hosts: HOSTS = Field(default_factory=list)
    load_balancer: LoadBalancerConfig | None = None

    @field_validator("load_balancer")
    @classmethod
    def _load_balancer(cls, value: LoadBalancerConfig | None, info: ValidationInfo) -> LoadBalancerConfig | None:
        check_load_balancer(value, info.data.get("hosts") or [])  # hosts come first, so they are known here
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AppKeys:
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise ValueError(f"{', '.join(both)} is both in env and in secrets")
        if self.roles and sum(r.http for r in self.roles.values()) != 1:
            raise ValueError("exactly one role takes traffic (http: true)")
        # Mixed into an environment: ECS has its own (task definitions, secrets, services).
        target = getattr(self, "target", "docker")
        # By value, not by the keys given: a recorded config (model_dump_json) repeats every default.
        values = {"env": self.env, "secrets": self.secrets, "roles": self.roles, "tls": self.tls,
                  "release": self.release, "hosts": self.hosts,
                  "load_balancer": self.load_balancer, "resources": self.resources != Resources()}
        given = [k for k, v in values.items() if v]
        if target != "docker" and given:
            raise ValueError(f"{', '.join(given)} apply to the docker target; target {target} has its own")
        return self

    def app_spec(self) -> AppSpec:
        roles = tuple(Role(name, tuple(shlex.split(r.command)) if r.command else None, r.replicas, r.http,
                           parse_duration(r.min_ready), r.stop_signal, parse_duration(r.stop_grace))
                      for name, r in self.roles.items())
        tls = Tls(self.tls.certificate, self.tls.redirect, self.tls.http_listen) if self.tls else None
        release = Release(tuple(shlex.split(self.release.command)), self.release.approval == "required",
                          parse_duration(self.release.timeout)) if self.release else None
        return AppSpec(env=tuple(sorted(self.env.items())), secrets=tuple(sorted(self.secrets.items())), roles=roles,
                       cpus=self.resources.cpus, memory=parse_memory(self.resources.memory), tls=tls,
                       release=release, hosts=docker_hosts(self.hosts),
                       lb_host=self.load_balancer.host if self.load_balancer else "")


def app_summary(keys: AppKeys) -> str:
    """One line for previews: plain env values, secret references (never values), roles, limits."""
    parts = []
    if keys.env:
        parts.append("env " + ", ".join(f"{k}={printable(v, 60)}" for k, v in sorted(keys.env.items())))
    if keys.secrets:
        parts.append("secrets " + ", ".join(f"{k} from {v}" for k, v in sorted(keys.secrets.items())))
    if keys.roles:
        parts.append("roles " + ", ".join(f"{name} x{r.replicas}" + (" (http)" if r.http else "")
                                          for name, r in keys.roles.items()))
    parts.append(f"{keys.resources.cpus:g} cpu, {keys.resources.memory} per container")
    if keys.tls:
        redirect = f", {keys.tls.http_listen} redirects" if keys.tls.redirect else ""
        parts.append(f"tls {keys.tls.certificate}{redirect}")
    if keys.release:
        parts.append(f"release `{printable(keys.release.command, 80)}`"
                     + (" (approval required)" if keys.release.approval == "required" else ""))
    return "; ".join(parts)
