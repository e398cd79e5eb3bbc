"""How a container of a release runs: its environment (plain env, resolved secrets, PORT), its
command, limits, restart policy, log rotation and stop signal, and a keyed digest of all that,
kept as a label: a container whose digest differs (a rotated secret, a changed limit) is another
release to the roll-out, so `deploy --restart` of the same sha replaces it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.types import LogConfig

from bot.domain import RolloutPlan
from bot.domain.app import Role
from bot.infra.secrets import Masker, SecretResolver, digest
from bot.infra.targets.docker.world import Wanted
from bot.ports import EventSink

LOG_ROTATION = {"max-size": "10m", "max-file": "3"}
RESTART = {"Name": "unless-stopped"}


@dataclass(frozen=True)
class RunSpec:
    plan: RolloutPlan
    env: dict[str, str]  # plain env and secret values: only ever handed to Docker
    masker: Masker
    base: str  # digest of env, secrets and resources
    # False for repairs: a container of the live sha with an older spec (a secret rotated since)
    # is kept; only `deploy --restart` replaces it, one at a time.
    strict: bool = True
    web: Role = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "web", self.plan.app.web(self.plan.replicas))

    def digest(self, role: Role) -> str:
        return digest(self.base.encode(), role.name, repr(role.command), role.stop_signal)

    def wanted(self, role: Role | None = None) -> Wanted:
        role = role or self.web
        return Wanted(role.name, self.plan.sha, self.digest(role) if self.strict else "", self.plan.image)

    def sink(self, on_event: EventSink) -> EventSink:
        """`on_event` with every secret value masked in the message and the data."""
        masker = self.masker

        def masked(message: str, **data: Any) -> None:
            on_event(masker(message), **masker.data(data))

        return masked

    def run_kwargs(self, role: Role, port: int | None) -> dict[str, Any]:
        """docker-py `containers.run` arguments for a container of `role`."""
        env = dict(self.env)
        if port is not None:
            env["PORT"] = str(port)
        app = self.plan.app
        kwargs: dict[str, Any] = {
            "environment": env, "nano_cpus": int(app.cpus * 1e9), "mem_limit": app.memory,
            "restart_policy": dict(RESTART), "log_config": LogConfig(type="json-file", config=dict(LOG_ROTATION)),
            "stop_signal": role.stop_signal}
        if role.command:
            kwargs["command"] = list(role.command)
        return kwargs


def spec_key(state_dir: Path) -> bytes:
    """The key of the spec digests, made once per state dir and readable by the bot only."""
    path = Path(state_dir) / "spec.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
        return path.read_bytes()


def run_spec(plan: RolloutPlan, resolver: SecretResolver, key: bytes) -> RunSpec:
    """Resolve the plan's secrets (SecretError before anything changes) into a RunSpec."""
    app = plan.app
    secrets = resolver.resolve(app.secrets)
    env = {**dict(app.env), **secrets}
    parts = [f"{k}={v}" for k, v in sorted(env.items())] + [f"cpus={app.cpus}", f"memory={app.memory}"]
    return RunSpec(plan, env, Masker(secrets.values()), digest(key, *parts))


@contextmanager
def using(holder: Any, spec: RunSpec) -> Iterator[RunSpec]:
    """Make `spec` the current thread's spec on `holder` (a threading.local) for one call."""
    previous = getattr(holder, "spec", None)
    holder.spec = spec
    try:
        yield spec
    finally:
        holder.spec = previous
