"""Target on one Docker host behind HAProxy: rolling and blue-green roll-outs without downtime.

Every call observes the world first (containers by label, HAProxy's server list) and does only
what is missing, so a roll-out killed at any point converges when run again.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from docker.errors import APIError, DockerException, NotFound

from bot.adapters.haproxy import HAProxy, Server
from bot.domain import HealthPolicy, Replica, RolloutPlan, VerifyReport
from bot.errors import RolloutError
from bot.ports import EventSink

LABEL_SERVICE = "mainline.service"
LABEL_ENVIRONMENT = "mainline.environment"
LABEL_SHA = "mainline.sha"
LABEL_PORT = "mainline.port"
HOST = "127.0.0.1"
PROBE_TIMEOUT = 2.0
DRAIN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Instance:
    """A container of ours, as observed."""

    name: str
    sha: str
    port: int
    image: str
    running: bool
    container: object

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


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


def probe_status(url: str, timeout: float = PROBE_TIMEOUT) -> tuple[int | None, str]:
    """GET `url` (following the sample app's /health -> /health/ redirect): the status, or None
    when nothing answered, and a line saying what came back."""
    try:
        resp = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return None, f"GET {url}: {type(exc).__name__}: {exc}"
    return resp.status_code, f"GET {url}: {resp.status_code} {resp.text.strip()[:300]}"


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """2xx is healthy."""
    status, output = probe_status(url, timeout)
    return status is not None and 200 <= status < 300, output


def lb_url(listen: str, path: str) -> str:
    host, _, port = listen.rpartition(":")
    if host in ("", "*", "0.0.0.0", "::", "[::]"):
        host = HOST
    return f"http://{host}:{port}{path}"


class DockerTarget:
    def __init__(self, state_dir: Path, client=None, port_range: tuple[int, int] = (20000, 29999)):
        self.state_dir = Path(state_dir)
        self._client = client
        self.port_range = port_range

    @property
    def client(self):
        if self._client is None:
            self._client = docker.from_env()
        return self._client

    def load_balancer(self, service: str, environment: str, listen: str = "") -> HAProxy:
        return HAProxy(self.state_dir, service, environment, listen)

    # -- the Target port -------------------------------------------------------------------

    def roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        if lb.ensure_running():
            on_event(f"started load balancer for {plan.service}/{plan.environment} on {plan.listen}",
                     step="lb_started", listen=plan.listen)
        self._drop_dead(plan, lb, on_event)
        if plan.strategy == "blue-green":
            self._blue_green(plan, lb, on_event)
        else:
            self._rolling(plan, lb, on_event)
        on_event(f"{plan.service}/{plan.environment} serves {plan.image} on {plan.replicas} replica(s)",
                 step="rolled_out", sha=plan.sha)

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        health = plan.health
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        url = lb_url(plan.listen, health.path)
        before = lb.counters()
        on_event(f"baking {plan.service} for {health.bake:g}s: probing {url} every {health.interval:g}s",
                 step="bake_started", url=url)
        probes = failed = in_a_row = 0
        last = ""
        deadline = time.monotonic() + health.bake
        while time.monotonic() < deadline:
            ok, last = probe(url)
            probes += 1
            failed += not ok
            in_a_row = 0 if ok else in_a_row + 1
            if in_a_row >= health.failures:
                after = lb.counters()
                reason = f"{in_a_row} health probes in a row failed through the load balancer"
                on_event(f"unhealthy: {reason}: {last}", step="bake_failed", output=last)
                return VerifyReport(False, probes, failed, after.responses - before.responses,
                                    after.errors_5xx - before.errors_5xx, reason, last)
            time.sleep(health.interval)
        after = lb.counters()
        report = VerifyReport(True, probes, failed, after.responses - before.responses,
                              after.errors_5xx - before.errors_5xx, "", last)
        if report.error_rate > health.max_error_rate:
            reason = (f"5xx rate {report.error_rate:.1%} ({report.errors_5xx} of {report.requests} responses) "
                      f"is above {health.max_error_rate:.1%}")
            on_event(f"unhealthy: {reason}", step="bake_failed", error_rate=report.error_rate)
            return VerifyReport(False, probes, failed, report.requests, report.errors_5xx, reason, last)
        on_event(f"healthy after {probes} probes; 5xx rate {report.error_rate:.1%} over {report.requests} responses",
                 step="bake_passed", error_rate=report.error_rate)
        return report

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        world = self._observe(plan.service, plan.environment, lb)
        if not world.serving(sha=plan.sha):
            raise RolloutError(f"{plan.sha[:12]} does not serve {plan.service}; not removing the others")
        for server in list(world.servers.values()):
            inst = world.instance(server.name)
            if inst is None or inst.sha != plan.sha:
                self._retire(lb, server.name, inst, on_event)
        for inst in world.instances:
            if inst.sha != plan.sha and inst.name not in world.servers:
                self._remove(inst, on_event)

    def discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        world = self._observe(plan.service, plan.environment, lb)
        for inst in world.instances:
            if inst.sha != plan.sha:
                continue
            server = world.servers.get(inst.name)
            if server is not None and server.serving:
                continue
            if server is not None:
                lb.delete(inst.name)
                on_event(f"removed {inst.name} from the load balancer", step="lb_removed", replica=inst.name)
            self._remove(inst, on_event)

    def replicas(self, service: str, environment: str) -> list[Replica]:
        world = self._observe(service, environment, self.load_balancer(service, environment))
        result = []
        for inst in world.instances:
            server = world.servers.get(inst.name)
            healthy = False if not inst.running else (True if server and server.serving else None)
            result.append(Replica(inst.name, inst.image, inst.sha, inst.address, healthy))
        return result

    # -- strategies ------------------------------------------------------------------------

    def _rolling(self, plan: RolloutPlan, lb: HAProxy, on_event: EventSink) -> None:
        """One new replica in, one old replica out, until only `plan.replicas` new ones serve."""
        while True:
            world = self._observe(plan.service, plan.environment, lb)
            new = world.serving(sha=plan.sha)
            old = world.serving(other_than=plan.sha)
            if len(new) < plan.replicas:
                self._bring_up(plan, lb, world, on_event)
                if old:
                    self._retire(lb, old[0].name, world.instance(old[0].name), on_event)
            elif old:
                self._retire(lb, old[0].name, world.instance(old[0].name), on_event)
            elif len(new) > plan.replicas:
                self._retire(lb, new[-1].name, world.instance(new[-1].name), on_event)
            else:
                break
        # Leftovers of an interrupted run: servers out of rotation and containers out of the LB.
        world = self._observe(plan.service, plan.environment, lb)
        for server in world.servers.values():
            if not server.serving:
                self._retire(lb, server.name, world.instance(server.name), on_event)
        for inst in world.instances:
            if inst.name not in world.servers:
                self._remove(inst, on_event)

    def _blue_green(self, plan: RolloutPlan, lb: HAProxy, on_event: EventSink) -> None:
        """Bring the whole new set up, switch in one go, keep the old set in maint for rollback."""
        world = self._observe(plan.service, plan.environment, lb)
        new = [i for i in world.instances if i.sha == plan.sha and i.running]
        fresh = []
        for _ in range(plan.replicas - len(new)):
            fresh.append(self._start(plan, world, on_event))
            world = self._observe(plan.service, plan.environment, lb)
        chosen = (new + fresh)[: plan.replicas]
        for inst in chosen:
            self._await_healthy(plan, inst, on_event, remove_on_failure=inst in fresh or inst.name not in world.servers)
        for inst in chosen:
            self._admit(lb, inst, on_event)
        world = self._observe(plan.service, plan.environment, lb)
        old = [s for s in world.servers.values()
               if s.state != "maint" and (world.instance(s.name) is None or world.instance(s.name).sha != plan.sha)]
        for server in old:
            lb.drain(server.name)
            on_event(f"draining {server.name}", step="draining", replica=server.name)
        for server in old:
            lb.wait_drained(server.name, DRAIN_TIMEOUT)
            lb.maint(server.name)
            on_event(f"{server.name} drained; kept in maintenance for rollback until finish",
                     step="kept_for_rollback", replica=server.name)
        # Replicas of this release beyond the wanted count (a bigger earlier set) go away.
        for server in world.serving(sha=plan.sha)[plan.replicas:]:
            self._retire(lb, server.name, world.instance(server.name), on_event)

    # -- steps -----------------------------------------------------------------------------

    def _bring_up(self, plan: RolloutPlan, lb: HAProxy, world: World, on_event: EventSink) -> None:
        """Put one more healthy replica of plan.sha into rotation, re-using one that is there."""
        spare = [i for i in world.instances if i.sha == plan.sha and i.running
                 and not (i.name in world.servers and world.servers[i.name].serving)]
        for inst in spare:
            on_event(f"re-using {inst.name} on port {inst.port}", step="replica_reused", replica=inst.name)
            ok, output = self._wait_healthy(plan.health, inst)
            if ok:
                self._admit(lb, inst, on_event)
                return
            on_event(f"{inst.name} is not healthy ({output}); replacing it", step="replica_unhealthy",
                     replica=inst.name, output=output)
            if inst.name in world.servers:
                lb.delete(inst.name)
            self._remove(inst, on_event)
        inst = self._start(plan, world, on_event)
        self._await_healthy(plan, inst, on_event, remove_on_failure=True)
        self._admit(lb, inst, on_event)

    def _await_healthy(self, plan: RolloutPlan, inst: Instance, on_event: EventSink, remove_on_failure: bool) -> None:
        ok, output = self._wait_healthy(plan.health, inst)
        if ok:
            on_event(f"{inst.name} is healthy", step="replica_healthy", replica=inst.name)
            return
        if remove_on_failure:
            self._remove(inst, on_event)
        raise RolloutError(f"{inst.name} ({plan.image}) failed its health check "
                           f"({plan.health.failures} answers in a row, or no answer in {plan.health.timeout:g}s); "
                           f"the previous release keeps serving. Last probe: {output}")

    def _admit(self, lb: HAProxy, inst: Instance, on_event: EventSink) -> None:
        server = lb.server(inst.name)
        if server is None:
            lb.add(inst.name, inst.address)
        if server is None or not server.serving:
            lb.enable(inst.name)
            on_event(f"added {inst.name} ({inst.address}) to the load balancer", step="lb_added",
                     replica=inst.name, address=inst.address)

    def _retire(self, lb: HAProxy, name: str, inst: Instance | None, on_event: EventSink) -> None:
        """Drain a server until it holds no connection, delete it, then stop its container."""
        server = lb.server(name)
        if server is not None:
            if server.state != "maint":
                lb.drain(name)
                on_event(f"draining {name}", step="draining", replica=name)
                if not lb.wait_drained(name, DRAIN_TIMEOUT):
                    on_event(f"{name} still had connections after {DRAIN_TIMEOUT:g}s; removing it anyway",
                             step="drain_timeout", replica=name)
            lb.delete(name)
            on_event(f"removed {name} from the load balancer", step="lb_removed", replica=name)
        if inst is not None:
            self._remove(inst, on_event)

    def _drop_dead(self, plan: RolloutPlan, lb: HAProxy, on_event: EventSink) -> None:
        """Forget servers whose container is gone or stopped, and stopped containers."""
        world = self._observe(plan.service, plan.environment, lb)
        for server in world.servers.values():
            inst = world.instance(server.name)
            if inst is None or not inst.running:
                lb.delete(server.name)
                on_event(f"removed {server.name} from the load balancer: its container is not running",
                         step="lb_removed", replica=server.name)
        for inst in world.instances:
            if not inst.running:
                self._remove(inst, on_event)

    def _start(self, plan: RolloutPlan, world: World, on_event: EventSink) -> Instance:
        taken = {i.name for i in world.instances}
        prefix = f"mainline-{plan.service}-{plan.environment}-{plan.sha[:12]}"
        name = next(f"{prefix}-{n}" for n in range(1, 10_000) if f"{prefix}-{n}" not in taken)
        port = self._free_port(plan)
        labels = {LABEL_SERVICE: plan.service, LABEL_ENVIRONMENT: plan.environment,
                  LABEL_SHA: plan.sha, LABEL_PORT: str(port)}
        try:
            container = self.client.containers.run(plan.image, detach=True, name=name, network_mode="host",
                                                   environment={"PORT": str(port)}, labels=labels)
        except (APIError, DockerException) as exc:
            raise RolloutError(f"could not start {name} from {plan.image}: {exc}") from exc
        on_event(f"started replica {name} on port {port}", step="replica_started", replica=name, port=port)
        return Instance(name, plan.sha, port, plan.image, True, container)

    def _wait_healthy(self, health: HealthPolicy, inst: Instance) -> tuple[bool, str]:
        url = f"http://{inst.address}{health.path}"
        deadline = time.monotonic() + health.timeout
        output = "no probe yet"
        answered_badly = 0
        while True:
            status, output = probe_status(url)
            if status is not None and 200 <= status < 300:
                return True, output
            # A replica still starting refuses connections; one that answers non-2xx
            # `failures` times in a row has started and is unhealthy: no need to wait it out.
            answered_badly = answered_badly + 1 if status is not None else 0
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
            return
        except APIError as exc:
            # 409 "removal already in progress": someone else is removing it; wait until it is gone.
            if exc.status_code != 409 or not self._gone_within(inst, 30):
                raise RolloutError(f"could not remove {inst.name}: {exc}") from exc
        except DockerException as exc:
            raise RolloutError(f"could not remove {inst.name}: {exc}") from exc
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

    # -- observation -----------------------------------------------------------------------

    def _observe(self, service: str, environment: str, lb: HAProxy) -> World:
        try:
            containers = self.client.containers.list(
                all=True, filters={"label": [f"{LABEL_SERVICE}={service}", f"{LABEL_ENVIRONMENT}={environment}"]})
        except (APIError, DockerException) as exc:
            raise RolloutError(f"could not list containers of {service}/{environment}: {exc}") from exc
        instances = []
        for c in containers:
            labels = c.labels
            instances.append(Instance(c.name, labels.get(LABEL_SHA, ""), int(labels.get(LABEL_PORT, "0")),
                                      c.attrs.get("Config", {}).get("Image", ""), c.status == "running", c))
        servers = {s.name: s for s in lb.servers()} if lb.running() else {}
        return World(sorted(instances, key=lambda i: i.name), servers)

    def _is_running(self, inst: Instance) -> bool:
        try:
            inst.container.reload()
        except NotFound:
            return False
        return inst.container.status in ("running", "created")

    def _logs(self, inst: Instance) -> str:
        try:
            return inst.container.logs(tail=20).decode(errors="replace").strip() or "(no output)"
        except (APIError, DockerException):
            return "(logs unavailable)"

    def _free_port(self, plan: RolloutPlan) -> int:
        try:
            ours = self.client.containers.list(all=True, filters={"label": [LABEL_PORT]})
        except (APIError, DockerException) as exc:
            raise RolloutError(f"could not list containers: {exc}") from exc
        taken = {c.labels.get(LABEL_PORT) for c in ours}
        taken.add(plan.listen.rpartition(":")[2])
        low, high = self.port_range
        for _ in range(200):
            port = random.randint(low, high)
            if str(port) in taken:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((HOST, port))
                except OSError:
                    continue
            return port
        raise RolloutError(f"no free port in {low}-{high}")
