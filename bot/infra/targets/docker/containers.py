"""The containers of a Docker target: start one, wait for it to be healthy, remove it, observe
them all. Docker errors that say nothing about the release stay Docker's (the target makes them
transient); only a command the image cannot run is the release's own RolloutError."""

from __future__ import annotations

import random
import secrets
import socket
import threading
import time
from contextlib import suppress
from typing import Any

from docker.errors import APIError, DockerException, NotFound

from bot.domain import HealthPolicy, RolloutPlan
from bot.errors import RolloutError, TransientError
from bot.infra.http_probe import probe, probe_url
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.runspec import RunSpec
from bot.infra.targets.docker.world import (
    HOST,
    LABEL_ENVIRONMENT,
    LABEL_PORT,
    LABEL_ROLE,
    LABEL_SERVICE,
    LABEL_SHA,
    LABEL_SPEC,
    Instance,
    World,
    observe,
    own_engine_address,
)
from bot.ports import EventSink

# What a container that cannot start says when the fault is the image's own (its command).
START_FAULTS = ("executable file not found", "exec format error", "OCI runtime create failed")



def free_port(port_range: tuple[int, int], taken: set[str] | None = None) -> int:
    """A port of `port_range` on 127.0.0.1 that nothing listens on and no container of ours
    holds (`taken`); tried at random, so two workers rarely pick the same one."""
    low, high = port_range
    for _ in range(200):
        port = random.randint(low, high)
        if taken and str(port) in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        return port
    raise TransientError(f"no free port in {low}-{high}")

def answers_at(address: str, port: int) -> bool:
    """Whether something accepts connections at address:port (a port another program holds)."""
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


class ContainerOps:
    """Container steps shared by the roll-out strategies; `client` and `port_range` come from the target."""

    client: Any
    port_range: tuple[int, int]
    _local: threading.local  # .spec: the RunSpec of the current call

    def _start(self, plan: RolloutPlan, world: World, on_event: EventSink) -> Instance:
        name = self._fresh_name(f"mainline-{plan.service}-{plan.environment}-{plan.sha[:12]}",
                                {i.name for i in world.instances})
        port = self._free_port(plan)
        spec = self._spec()
        labels = {LABEL_SERVICE: plan.service, LABEL_ENVIRONMENT: plan.environment,
                  LABEL_SHA: plan.sha, LABEL_PORT: str(port), LABEL_ROLE: spec.web.name,
                  LABEL_SPEC: spec.digest(spec.web)}
        try:
            container = self.client.containers.run(plan.image, detach=True, name=name, network_mode="host",
                                                   labels=labels, **spec.run_kwargs(spec.web, port))
        except APIError as exc:
            # A command the image cannot run is the release's own fault; anything else (a name
            # taken by a concurrent start, a pull from a busy registry, a busy daemon) is not,
            # and the attempt is retried on a fresh observation.
            if not any(fault in str(exc) for fault in START_FAULTS):
                raise
            with suppress(DockerException):
                self.client.containers.get(name).remove(force=True)
            raise RolloutError(f"{name} ({plan.image}) could not start: {exc.explanation or exc}; "
                               "the previous release keeps serving") from exc
        host = getattr(self.client, "address_of", lambda _: own_engine_address())(container)
        url = getattr(self.client, "url_of", lambda _: "")(container)
        where = f" on {url}" if url else f" on {host}" if host != HOST else ""
        on_event(f"started replica {name} on port {port}{where}", step="replica_started", replica=name, port=port,
                 host=host)
        return Instance(name, plan.sha, port, plan.image, True, container, host)

    def _wait_healthy(self, health: HealthPolicy, inst: Instance) -> tuple[bool, str]:
        url = probe_url(inst.host, inst.port, health.path)
        deadline = time.monotonic() + health.timeout
        output = "no probe yet"
        answered_badly = 0
        while True:
            result = probe(url)
            output = result.line
            if result.healthy:
                return True, output
            # A replica still starting refuses connections; one that answers non-2xx
            # `failures` times in a row has started and is unhealthy: no need to wait it out.
            answered_badly = answered_badly + 1 if result.answered else 0
            if answered_badly >= health.failures:
                return False, output
            if not self._is_running(inst):
                return False, f"{output}; container exited: {self._logs(inst)}"
            if time.monotonic() >= deadline:
                return False, output
            time.sleep(min(health.interval, 0.25))

    def _remove(self, inst: Instance, on_event: EventSink) -> None:
        try:
            inst.container.remove(force=True)
        except NotFound:
            return  # gone already: the effect we wanted
        except APIError as exc:
            # 409 "removal already in progress": someone else is removing it; wait until it is gone.
            if exc.status_code != 409:
                raise
            if not self._gone_within(inst, 30):
                raise TransientError(f"{inst.name} is still being removed after 30s") from exc
        on_event(f"stopped and removed {inst.name}", step="replica_removed", replica=inst.name)

    def _gone_within(self, inst: Instance, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.client.containers.get(inst.name)
            except NotFound:
                return True
            time.sleep(0.2)
        return False

    def _fresh_name(self, prefix: str, taken: set[str]) -> str:
        """`prefix-N`, the first N free. On several hosts a host that is down hides its names, so
        the suffix is random there instead: two hosts must never hold one name."""
        if hasattr(self.client, "place"):
            return next(name for _ in range(100) if (name := f"{prefix}-{secrets.token_hex(3)}") not in taken)
        return next(f"{prefix}-{n}" for n in range(1, 10_000) if f"{prefix}-{n}" not in taken)

    # -- observation -----------------------------------------------------------------------

    def _spec(self) -> RunSpec:
        spec = getattr(self._local, "spec", None)
        if spec is None:
            raise RuntimeError("a container step ran outside DockerTarget._running")
        return spec

    def _observe(self, service: str, environment: str, lb: HAProxy) -> World:
        spec = getattr(self._local, "spec", None)
        mine = spec is not None and (spec.plan.service, spec.plan.environment) == (service, environment)
        return observe(self.client, service, environment, lb, spec.wanted() if spec is not None and mine else None)

    def _is_running(self, inst: Instance) -> bool:
        """False when the container exited on its own (the release's fault); a container removed
        by someone else tells nothing about the release, so that is a TransientError."""
        try:
            inst.container.reload()
        except NotFound as exc:
            raise TransientError(f"{inst.name} vanished while starting (removed outside Mainline)") from exc
        return inst.container.status in ("running", "created")

    def _logs(self, inst: Instance) -> str:
        try:
            text = inst.container.logs(tail=20).decode(errors="replace").strip()[-2000:] or "(no output)"
        except (APIError, DockerException):
            return "(logs unavailable)"
        spec = getattr(self._local, "spec", None)
        return spec.masker(text) if spec is not None else text

    def _free_port(self, plan: RolloutPlan) -> int:
        ours = self.client.containers.list(all=True, ignore_removed=True, filters={"label": [LABEL_PORT]})
        taken = {t for c in ours if (t := c.labels.get(LABEL_PORT))}
        taken.add(plan.listen.rpartition(":")[2])
        # On other machines, a port is tried from here: something answering there takes it.
        elsewhere: list[str] = getattr(self.client, "remote_addresses", lambda: [])()
        for _ in range(20):
            port = free_port(self.port_range, taken)
            if not any(answers_at(address, port) for address in elsewhere):
                return port
            taken.add(str(port))
        raise TransientError(f"no free port in {self.port_range[0]}-{self.port_range[1]} on every host")
