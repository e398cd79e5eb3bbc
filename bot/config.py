"""The repository's `.github/deploy.yml`: model, JSON Schema export, and errors with line numbers.

Everything here is written by whoever can push to the repository, so it is hostile input: names
become file paths and container names, `listen` is written into haproxy.cfg, `health.path` into
a URL, check limits reach Docker. Each value is checked strictly, and every string and list is
bounded (bot/config_values.py), so no value can inject, escape or run away.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot import safe_yaml
from bot.canary.config import Canary, Prometheus, check_canary
from bot.config_app import AppKeys
from bot.config_ecs import EcsSettings, check_ecs
from bot.config_values import (
    CHECK_NAME,
    CPUS_MAX,
    CPUS_MIN,
    DEPLOYER,
    EMAIL,
    GLOB,
    HEALTH_PATH,
    LISTEN,
    MEMORY,
    NAME,
    PATH_GLOB,
    REF,
    SHORT,
    TEXT,
    URL,
    ZONE,
    DurationRange,
    check_duration,
    parse_duration,
    parse_memory,
    printable,
)
from bot.culprit.options import Culprit
from bot.domain import HealthPolicy
from bot.globs import glob_match

__all__ = [
    "CONFIG_PATH",
    "ConfigError",
    "ConfigProblem",
    "DeployConfig",
    "EcsSettings",
    "json_schema",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_memory",
    "write_schema",
]

CONFIG_PATH = ".github/deploy.yml"
SCHEMA_PATH = Path(__file__).with_name("deploy.schema.json")

CHECK_TIMEOUT = DurationRange(0.001, 2 * 3600.0)  # a repo check may hold a build for at most 2 h
HEALTH_INTERVAL = DurationRange(0.01, 300.0)
HEALTH_BAKE = DurationRange(0.0, 2 * 3600.0)
HEALTH_TIMEOUT = DurationRange(0.001, 3600.0)

Duration = str | float


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Window(_Model):
    timezone: ZONE = "UTC"
    days: SHORT = "mon-sun"
    hours: SHORT = "00:00-24:00"
    freeze: list[SHORT] = Field(default_factory=list, max_length=100,
                                description="ISO dates or date ranges (2026-12-24..2026-12-26) with no deploys")
    holidays: list[SHORT] = Field(default_factory=list, max_length=100, description="ISO dates with no deploys")


class Environment(AppKeys):  # env, secrets, roles, resources, tls, release: bot/config_app.py
    target: Literal["docker", "ecs"] = "docker"
    auto_deploy: bool = False
    branches: list[GLOB] = Field(default_factory=list, max_length=20,
                                 description="branch globs this environment takes; empty means the production branch")
    deployers: list[DEPLOYER] = Field(default_factory=list, max_length=100)
    strategy: Literal["rolling", "blue-green", "canary"] = "rolling"
    replicas: int = Field(default=2, ge=1, le=50)
    window: Window | None = None
    listen: LISTEN = Field(default="127.0.0.1:8080", description="load balancer address: an IP literal and a port, "
                                                          "127.0.0.1:8080 or [::1]:8080")
    url: URL | None = None
    ecs: EcsSettings | None = None
    canary: Canary | None = Field(default=None, description="strategy: canary: the steps and their analysis")
    prometheus: Prometheus | None = None

    @model_validator(mode="after")
    def _canary(self) -> Environment:
        check_canary(self.strategy, self.canary, self.prometheus)
        check_ecs(self.target, self.ecs)
        return self


class RepoCheck(_Model):
    name: CHECK_NAME
    run: str = Field(max_length=4096)
    timeout: Duration = Field(default="10m", description="at most 2h")
    cpus: float = Field(default=1.0, ge=CPUS_MIN, le=CPUS_MAX)
    memory: MEMORY = "512m"

    @field_validator("run")
    @classmethod
    def _command(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("the command holds a NUL character")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        return check_duration(value, CHECK_TIMEOUT)

    def limits(self) -> tuple[float, int, float]:
        """(cpus, memory in bytes, timeout in seconds); ValueError when out of bounds, which
        only a check built without validation can be."""
        if not CPUS_MIN <= self.cpus <= CPUS_MAX:
            raise ValueError(f"cpus must be between {CPUS_MIN:g} and {CPUS_MAX:g}; got {self.cpus!r}")
        return self.cpus, parse_memory(self.memory), parse_duration(check_duration(self.timeout, CHECK_TIMEOUT))


class Health(_Model):
    path: HEALTH_PATH = "/health"
    interval: Duration = "2s"
    failures: int = Field(default=3, ge=1, le=100)
    bake: Duration = "30s"
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    timeout: Duration = "60s"

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        return check_duration(value, HEALTH_INTERVAL)

    @field_validator("bake")
    @classmethod
    def _bake(cls, value: Any) -> Any:
        return check_duration(value, HEALTH_BAKE)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        return check_duration(value, HEALTH_TIMEOUT)

    def policy(self) -> HealthPolicy:
        return HealthPolicy(
            path=self.path,
            interval=parse_duration(self.interval),
            failures=self.failures,
            bake=parse_duration(self.bake),
            max_error_rate=self.max_error_rate,
            timeout=parse_duration(self.timeout),
        )


class Migrations(_Model):
    policy: Literal["block", "approve", "allow-expand"] = "approve"
    paths: list[PATH_GLOB] = Field(default_factory=list, max_length=20, description="extra globs that hold migrations")


class Rollback(_Model):
    auto: bool = True
    revert: Literal["pull-request", "push"] = "pull-request"


class Notify(_Model):
    slack_channel: SHORT | None = None
    email: list[EMAIL] = Field(default_factory=list, max_length=20)


class DeployConfig(_Model):
    service: NAME
    branch: REF = "master"
    environments: dict[NAME, Environment] = Field(default_factory=lambda: {"production": Environment(auto_deploy=True)},
                                                  max_length=20)
    checks: list[RepoCheck] = Field(default_factory=list, max_length=20)
    required_contexts: list[TEXT] = Field(default_factory=list, max_length=20)
    health: Health = Field(default_factory=Health)
    migrations: Migrations = Field(default_factory=Migrations)
    depends_on: list[NAME] = Field(default_factory=list, max_length=20)
    rollback: Rollback = Field(default_factory=Rollback)
    notify: Notify = Field(default_factory=Notify)
    culprit: Culprit = Field(default_factory=Culprit, description="finding the bad PR of a failed release")

    def environments_for(self, branch: str) -> list[str]:
        """Environments that deploy `branch` automatically (globs matched in linear time)."""
        names = []
        for name, env in self.environments.items():
            patterns = env.branches or [self.branch]
            if any(glob_match(branch, p) for p in patterns) and (env.auto_deploy or env.branches):
                names.append(name)
        return names


@dataclass(frozen=True)
class ConfigProblem:
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "top level"
        return f"{CONFIG_PATH}: {where}: {self.path or '(root)'}: {self.message}"


class ConfigError(ValueError):
    """The repo config is invalid; `problems` say where and why."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _line_index(root: yaml.Node | None) -> dict[tuple, int]:
    """Map each key path in a YAML document to the 1-based line it starts on."""
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return lines


def _problems(exc: ValidationError, root: yaml.Node | None) -> list[ConfigProblem]:
    index = _line_index(root)
    problems = []
    for err in exc.errors(include_url=False, include_input=False)[:20]:
        loc = tuple(err["loc"])
        line = None
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in index:
                line = index[loc[:cut]]
                break
        # Keys are the repository's text too: keep them printable and short in the message.
        where = ".".join(printable(str(p), 40) for p in loc if p != "[key]")
        message = err["msg"].removeprefix("Value error, ")
        problems.append(ConfigProblem(line, where, printable(message, 300)))
    return problems


def parse_config(text: str) -> DeployConfig:
    """Parse and validate a deploy.yml; raise ConfigError naming each bad line."""
    try:
        data, root = safe_yaml.load(text)
    except safe_yaml.YamlRefused as exc:
        raise ConfigError([ConfigProblem(exc.line, "", printable(exc.message, 300))]) from None
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(1, "", "the file must be a mapping with at least `service:`")])
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, root)) from None


def line_of(text: str, path: tuple) -> int | None:
    """The line where the key at `path` starts in a deploy.yml that parsed (None if absent)."""
    try:
        _, root = safe_yaml.load(text)
    except safe_yaml.YamlRefused:
        return None
    return _line_index(root).get(path)


def load_config(path: Path | str) -> DeployConfig:
    with open(path, "rb") as fh:
        raw = fh.read(safe_yaml.MAX_BYTES + 1)  # never more: the file may be huge
    if len(raw) > safe_yaml.MAX_BYTES:
        line = raw[:safe_yaml.MAX_BYTES].count(b"\n") + 1
        limit = f"the file is too large: the limit is {safe_yaml.MAX_BYTES // 1024} KB"
        raise ConfigError([ConfigProblem(line, "", limit)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(raw[:exc.start].count(b"\n") + 1, "", "not valid UTF-8 text")]) from None
    return parse_config(text)


def _strict_keys(node: Any) -> None:
    """pydantic publishes constrained dict keys as `patternProperties`, which lets any other key
    through; publish them as `propertyNames` so the schema refuses what the model refuses."""
    if isinstance(node, dict):
        props = node.get("patternProperties")
        if isinstance(props, dict) and len(props) == 1:
            [(pattern, value)] = props.items()
            del node["patternProperties"]
            node["propertyNames"] = {"pattern": pattern}
            node["additionalProperties"] = value
        for value in node.values():
            _strict_keys(value)
    elif isinstance(node, list):
        for value in node:
            _strict_keys(value)


def json_schema() -> dict:
    schema = DeployConfig.model_json_schema()
    _strict_keys(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Mainline .github/deploy.yml"
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
