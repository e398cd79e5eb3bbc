"""The repository's `.github/deploy.yml`: model, JSON Schema export, and errors with line numbers."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.domain import HealthPolicy

CONFIG_PATH = ".github/deploy.yml"
SCHEMA_PATH = Path(__file__).with_name("deploy.schema.json")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from `30s`, `10m`, `1.5h`, `250ms` or a bare number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Window(_Model):
    timezone: str = "UTC"
    days: str = "mon-sun"
    hours: str = "00:00-24:00"
    freeze: list[str] = Field(default_factory=list, description="ISO dates or date ranges (2026-12-24..2026-12-26) with no deploys")
    holidays: list[str] = Field(default_factory=list, description="ISO dates with no deploys")


class EcsSettings(_Model):
    cluster: str
    service: str
    container: str
    region: str = "us-east-1"
    alarms: list[str] = Field(default_factory=list)
    target_group_arn: str | None = None
    repository: str | None = None  # ECR repository name; defaults to the service name


class Environment(_Model):
    target: Literal["docker", "ecs"] = "docker"
    auto_deploy: bool = False
    branches: list[str] = Field(default_factory=list, description="branches this environment takes; empty means the production branch")
    deployers: list[str] = Field(default_factory=list)
    strategy: Literal["rolling", "blue-green"] = "rolling"
    replicas: int = Field(2, ge=1, le=50)
    window: Window | None = None
    listen: str = Field("127.0.0.1:8080", description="load balancer address, host:port")
    url: str | None = None
    ecs: EcsSettings | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen must be host:port, got {value!r}")
        return value


class RepoCheck(_Model):
    name: str
    run: str
    timeout: str | float = "10m"
    cpus: float = 1.0
    memory: str = "512m"

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        parse_duration(value)
        return value


class Health(_Model):
    path: str = "/health"
    interval: str | float = "2s"
    failures: int = Field(3, ge=1)
    bake: str | float = "30s"
    max_error_rate: float = Field(0.01, ge=0, le=1)
    timeout: str | float = "60s"

    @field_validator("interval", "bake", "timeout")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        parse_duration(value)
        return value

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
    paths: list[str] = Field(default_factory=list, description="extra globs that hold migrations")


class Rollback(_Model):
    auto: bool = True
    revert: Literal["pull-request", "push"] = "pull-request"


class Notify(_Model):
    slack_channel: str | None = None
    email: list[str] = Field(default_factory=list)


class DeployConfig(_Model):
    service: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    branch: str = "master"
    environments: dict[str, Environment] = Field(default_factory=lambda: {"production": Environment(auto_deploy=True)})
    checks: list[RepoCheck] = Field(default_factory=list)
    required_contexts: list[str] = Field(default_factory=list)
    health: Health = Field(default_factory=Health)
    migrations: Migrations = Field(default_factory=Migrations)
    depends_on: list[str] = Field(default_factory=list)
    rollback: Rollback = Field(default_factory=Rollback)
    notify: Notify = Field(default_factory=Notify)

    def environments_for(self, branch: str) -> list[str]:
        """Environments that deploy `branch` automatically."""
        names = []
        for name, env in self.environments.items():
            patterns = env.branches or [self.branch]
            if any(fnmatch.fnmatchcase(branch, p) for p in patterns) and (env.auto_deploy or env.branches):
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


def _line_index(text: str) -> dict[tuple, int]:
    """Map each key path in a YAML document to the 1-based line it starts on."""
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[path + (key.value,)] = key.start_mark.line + 1
                walk(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def parse_config(text: str) -> DeployConfig:
    """Parse and validate a deploy.yml; raise ConfigError naming each bad line."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError([ConfigProblem(line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(1, "", "the file must be a mapping with at least `service:`")])
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        index = _line_index(text)
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = None
            for cut in range(len(loc), -1, -1):
                if loc[:cut] in index:
                    line = index[loc[:cut]]
                    break
            problems.append(ConfigProblem(line, ".".join(str(p) for p in loc), err["msg"]))
        raise ConfigError(problems) from None


def load_config(path: Path | str) -> DeployConfig:
    return parse_config(Path(path).read_text())


def json_schema() -> dict:
    schema = DeployConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Mainline .github/deploy.yml"
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
