"""Target on one Docker host behind HAProxy: rolling and blue-green roll-outs without downtime.

Every call observes the world first (containers by label, HAProxy's server list) and does only
what is missing, so a roll-out killed at any point converges when run again.

Only evidence about the new version is a RolloutError or an unhealthy report: its replicas'
health, its error rate. Everything the machinery does (a container gone between list and
inspect, a 404 or 409 from Docker, a busy daemon or registry, the load balancer's socket) is a
TransientError, retried here with backoff by observing the world again; the pipeline reads only
the former as a bad release.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

import docker
from docker.errors import APIError, DockerException, NotFound

from bot.domain import HealthPolicy, Replica, RolloutPlan, VerifyReport
from bot.errors import RolloutError, TransientError
from bot.infra.http_probe import lb_url, probe, probe_url
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.world import (  # noqa: F401 - LABEL_* and UnsafeNameError are public here too
    HOST,
    LABEL_ENVIRONMENT,
    LABEL_PORT,
    LABEL_SERVICE,
    LABEL_SHA,
    Instance,
    UnsafeNameError,
    World,
    infrastructure,
    load_balancer_in,
    observe,
)
from bot.ports import EventSink
from bot.retry import docker_api

DRAIN_TIMEOUT = 30.0
# What a container that cannot start says when the fault is the image's own (its command).
START_FAULTS = ("executable file not found", "exec format error", "OCI runtime create failed")
T = TypeVar("T")


class DockerTarget:
    def __init__(self, state_dir: Path, client=None, port_range: tuple[int, int] = (20000, 29999),
                 retrying=docker_api):
        self.state_dir = Path(state_dir)
        self._client = client
        self.port_range = port_range
        self.retrying = retrying  # a bot.retry policy; tests pass a fast one

    @property
    def client(self):
        if self._client is None:
            self._client = docker.from_env()
        return self._client

    def load_balancer(self, service: str, environment: str, listen: str = "") -> HAProxy:
        return load_balancer_in(self.state_dir, service, environment, listen)

    def _retried(self, what: str, step: Callable[..., T]) -> Callable[..., T]:
        """`step`, with infrastructure errors made transient and retried; each attempt observes anew."""
        def attempt(*args):
            with infrastructure(what):
                return step(*args)
        return self.retrying(attempt)

    # -- the Target port -------------------------------------------------------------------

    def roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
        self.load_balancer(plan.service, plan.environment, plan.listen)  # refuse unsafe names first
        self._retried(f"rolling out {plan.service}/{plan.environment}", self._roll_out)(plan, on_event)

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        self.load_balancer(plan.service, plan.environment, plan.listen)
        return self._retried(f"verifying {plan.service}/{plan.environment}", self._verify)(plan, on_event)

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        self.load_balancer(plan.service, plan.environment, plan.listen)
        self._retried(f"finishing {plan.service}/{plan.environment}", self._finish)(plan, on_event)

    def discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
        self.load_balancer(plan.service, plan.environment, plan.listen)
        self._retried(f"discarding {plan.sha[:12]} of {plan.service}/{plan.environment}", self._discard)(
            plan, on_event)

    def replicas(self, service: str, environment: str) -> list[Replica]:
        self.load_balancer(service, environment)
        return self._retried(f"listing replicas of {service}/{environment}", self._replicas)(service, environment)

    # -- one attempt of each -----------------------------------------------------------------

    def _roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
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

    def _verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
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
            result = probe(url)
            last = result.line
            probes += 1
            failed += not result.healthy
            in_a_row = 0 if result.healthy else in_a_row + 1
            if in_a_row >= health.failures:
                self._rule_out_infrastructure(plan, lb)
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
            self._rule_out_infrastructure(plan, lb)
            reason = (f"5xx rate {report.error_rate:.1%} ({report.errors_5xx} of {report.requests} responses) "
                      f"is above {health.max_error_rate:.1%}")
            on_event(f"unhealthy: {reason}", step="bake_failed", error_rate=report.error_rate)
            return VerifyReport(False, probes, failed, report.requests, report.errors_5xx, reason, last)
        on_event(f"healthy after {probes} probes; 5xx rate {report.error_rate:.1%} over {report.requests} responses",
                 step="bake_passed", error_rate=report.error_rate)
        return report

    def _rule_out_infrastructure(self, plan: RolloutPlan, lb: HAProxy) -> None:
        """Before calling the release bad, check that its replicas were there to answer: a load
        balancer that is down, or replicas removed behind our back, tell nothing about it."""
        what = f"{plan.service}/{plan.environment}"
        if not lb.running():
            raise TransientError(f"the load balancer of {what} does not answer; its probes say nothing "
                                 f"about {plan.sha[:12]}")
        world = self._observe(plan.service, plan.environment, lb)
        serving = world.serving(sha=plan.sha)
        vanished = [s.name for s in serving if world.instance(s.name) is None]
        if not serving or vanished:
            raise TransientError(f"replicas of {plan.sha[:12]} left {what} outside Mainline "
                                 f"({', '.join(vanished) or 'none in the load balancer'}); not judging the release")

    def _finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        world = self._observe(plan.service, plan.environment, lb)
        if not world.serving(sha=plan.sha):
            # Something took the verified release out of the load balancer: not its fault.
            raise TransientError(f"{plan.sha[:12]} does not serve {plan.service}; not removing the others")
        for server in list(world.servers.values()):
            inst = world.instance(server.name)
            if inst is None or inst.sha != plan.sha:
                self._retire(lb, server.name, inst, on_event)
        for inst in world.instances:
            if inst.sha != plan.sha and inst.name not in world.servers:
                self._remove(inst, on_event)

    def _discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
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

    def _replicas(self, service: str, environment: str) -> list[Replica]:
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
               if s.state != "maint" and getattr(world.instance(s.name), "sha", None) != plan.sha]
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
        on_event(f"started replica {name} on port {port}", step="replica_started", replica=name, port=port)
        return Instance(name, plan.sha, port, plan.image, True, container)

    def _wait_healthy(self, health: HealthPolicy, inst: Instance) -> tuple[bool, str]:
        url = probe_url(HOST, inst.port, health.path)
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

    # -- observation -----------------------------------------------------------------------

    def _observe(self, service: str, environment: str, lb: HAProxy) -> World:
        return observe(self.client, service, environment, lb)

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
            return inst.container.logs(tail=20).decode(errors="replace").strip()[-2000:] or "(no output)"
        except (APIError, DockerException):
            return "(logs unavailable)"

    def _free_port(self, plan: RolloutPlan) -> int:
        ours = self.client.containers.list(all=True, ignore_removed=True, filters={"label": [LABEL_PORT]})
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
        raise TransientError(f"no free port in {low}-{high}")
