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

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from bot.domain import Replica, RolloutPlan, VerifyReport
from bot.domain.app import DockerHost
from bot.errors import TransientError
from bot.infra.http_probe import lb_url, probe
from bot.infra.secrets import Masker, SecretResolver
from bot.infra.targets.docker.canary import DockerCanary
from bot.infra.targets.docker.containers import START_FAULTS  # noqa: F401 - public here too
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.hosts import Fleet, HostAccess
from bot.infra.targets.docker.lb_container import ContainerHAProxy
from bot.infra.targets.docker.placement import Placement
from bot.infra.targets.docker.release import ReleaseOps
from bot.infra.targets.docker.repair import Repairs
from bot.infra.targets.docker.roles import RoleOps
from bot.infra.targets.docker.runspec import RunSpec, run_spec, spec_key, using
from bot.infra.targets.docker.strategies import DRAIN_TIMEOUT, Strategies  # noqa: F401 - public here too
from bot.infra.targets.docker.tls import TlsSettings, certificate, https_url, probe_tls
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

T = TypeVar("T")


class DockerTarget(Placement, Repairs, ReleaseOps, RoleOps, Strategies):
    def __init__(self, state_dir: Path, client=None, port_range: tuple[int, int] = (20000, 29999),
                 retrying=docker_api, secrets: SecretResolver | None = None, hosts: HostAccess | None = None):
        self.state_dir = Path(state_dir)
        self._client = client
        self.host_access = hosts or HostAccess(secrets_dir=(secrets.secrets_dir if secrets else None))
        self._fleets: dict[tuple[DockerHost, ...], Fleet] = {}
        self._fleets_lock = threading.Lock()
        self.port_range = port_range
        self.retrying = retrying  # a bot.retry policy; tests pass a fast one
        self.secrets = secrets or SecretResolver(None)
        # The RunSpec of the call this thread is in (one target serves every driver thread).
        self._local = threading.local()

    @property
    def client(self):
        """The current call's hosts (a Fleet) when its environment lists `hosts:`, else the one engine."""
        spec = getattr(self._local, "spec", None)
        if spec is not None and spec.plan.app.hosts:
            return self._fleet(spec.plan.app.hosts)
        return self._own_engine()

    def load_balancer(self, service: str, environment: str, listen: str = "") -> HAProxy:
        """The service's HAProxy: a process next to the worker, or, for the current call's
        environment with `load_balancer: {host}`, a container on that Docker host."""
        tls = self._tls(service, environment)
        lb = load_balancer_in(self.state_dir, service, environment, listen, tls)
        spec = getattr(self._local, "spec", None)
        if spec is None or (spec.plan.service, spec.plan.environment) != (service, environment) \
                or not spec.plan.app.lb_host:
            return lb
        app = spec.plan.app
        host = next(h for h in app.hosts if h.url == app.lb_host)
        fleet = self._fleet(app.hosts)
        return ContainerHAProxy(self.state_dir, service, environment, listen, lambda: fleet.client_for(host),
                                self.host_access.haproxy_image or "", host.address, tls, f"Docker host {host.url}")

    def _tls(self, service: str, environment: str) -> TlsSettings | None:
        """The current call's TLS settings (its certificate under MAINLINE_SECRETS_DIR)."""
        spec = getattr(self._local, "spec", None)
        if spec is None or (spec.plan.service, spec.plan.environment) != (service, environment):
            return None
        tls = spec.plan.app.tls
        if tls is None:
            return None
        return TlsSettings(certificate(self.secrets.secrets_dir, tls.certificate), tls.http_listen)

    def _retried(self, what: str, step: Callable[..., T]) -> Callable[..., T]:
        """`step`, with infrastructure errors made transient and retried; each attempt observes anew."""
        def attempt(*args):
            with infrastructure(what):
                return step(*args)
        return self.retrying(attempt)

    @contextmanager
    def _running(self, plan: RolloutPlan, on_event: EventSink, strict: bool = True) -> Iterator[EventSink]:
        """Resolve the plan's secrets first (a SecretError changes nothing), then run the call
        with its RunSpec and a sink that masks every secret value."""
        self.load_balancer(plan.service, plan.environment, plan.listen)  # refuse unsafe names first
        self.host_access.check(plan.app.hosts, plan.app.lb_host)  # and hosts the operator did not allow
        spec = replace(run_spec(plan, self.secrets, spec_key(self.state_dir)), strict=strict)
        with using(self._local, spec):
            self._tls(plan.service, plan.environment)  # a certificate that is not there: SecretError, too
            yield spec.sink(on_event)

    # -- the Target port -------------------------------------------------------------------

    def roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
        with self._running(plan, on_event) as sink:
            self._retried(f"rolling out {plan.service}/{plan.environment}", self._roll_out)(plan, sink)

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        with self._running(plan, on_event) as sink:
            report = self._retried(f"verifying {plan.service}/{plan.environment}", self._verify)(plan, sink)
            mask = self._local.spec.masker
            return replace(report, reason=mask(report.reason), last_output=mask(report.last_output))

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        with self._running(plan, on_event) as sink:
            self._retried(f"finishing {plan.service}/{plan.environment}", self._finish)(plan, sink)

    def discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
        with self._running(plan, on_event) as sink:
            self._retried(f"discarding {plan.sha[:12]} of {plan.service}/{plan.environment}", self._discard)(
                plan, sink)

    def run_release(self, plan: RolloutPlan, on_event: EventSink) -> tuple[bool, str]:
        """Run the release command once; (succeeded, output tail with secrets masked)."""
        with self._running(plan, on_event) as sink:
            return self._retried(f"running the release command of {plan.service}", self._run_release)(plan, sink)

    def in_shape(self, plan: RolloutPlan) -> bool:
        """Whether what runs matches the live `plan`, judged without reading its secrets."""
        self.load_balancer(plan.service, plan.environment, plan.listen)  # refuse unsafe names first
        self.host_access.check(plan.app.hosts, plan.app.lb_host)
        self._reachable(plan)
        with using(self._local, RunSpec(plan, {}, Masker(), "", strict=False)):
            return self._retried(f"checking {plan.service}/{plan.environment}", self._in_shape)(plan)

    def repair(self, plan: RolloutPlan, on_event: EventSink) -> list[str]:
        """Make what runs match the live `plan` (the reconciler's call); the repairs made."""
        if self.in_shape(plan):
            return []
        with self._running(plan, on_event, strict=False) as sink:
            return self._retried(f"repairing {plan.service}/{plan.environment}", self._repair)(plan, sink)

    def replicas(self, service: str, environment: str) -> list[Replica]:
        self.load_balancer(service, environment)
        return self._retried(f"listing replicas of {service}/{environment}", self._replicas)(service, environment)

    # -- one attempt of each -----------------------------------------------------------------

    def _roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        if self._ensure_load_balancer(plan, lb, on_event):
            on_event(f"started load balancer for {plan.service}/{plan.environment} on {plan.listen}",
                     step="lb_started", listen=plan.listen)
        self._say_hosts_down(plan, on_event)
        self._drop_dead(plan, lb, on_event)
        if plan.strategy == "blue-green":
            self._blue_green(plan, lb, on_event)
        elif plan.strategy == "canary":
            DockerCanary(self, plan, lb, on_event).run()
        else:
            self._rolling(plan, lb, on_event)
        for role in plan.app.others:
            self._roll_role(plan, role, on_event)
        on_event(f"{plan.service}/{plan.environment} serves {plan.image} on {plan.replicas} replica(s)",
                 step="rolled_out", sha=plan.sha)

    def _verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        health = plan.health
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        tls = plan.app.tls is not None
        url = https_url(lb_url(plan.listen, health.path)) if tls else lb_url(plan.listen, health.path)
        before = lb.counters()
        on_event(f"baking {plan.service} for {health.bake:g}s: probing {url} every {health.interval:g}s",
                 step="bake_started", url=url)
        probes = failed = in_a_row = 0
        last = ""
        deadline = time.monotonic() + health.bake
        while time.monotonic() < deadline:
            result = (probe_tls if tls else probe)(url)
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
        self._finish_roles(plan, on_event)

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
        self._discard_roles(plan, on_event)

    def _replicas(self, service: str, environment: str) -> list[Replica]:
        world = self._observe(service, environment, self.load_balancer(service, environment))
        result = []
        for inst in world.instances:
            server = world.servers.get(inst.name)
            healthy = False if not inst.running else (True if server and server.serving else None)
            result.append(Replica(inst.name, inst.image, inst.sha, inst.address, healthy))
        return result
