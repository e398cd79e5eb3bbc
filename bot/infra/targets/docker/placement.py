"""Where a Docker target's containers and load balancer are: the worker's own engine, or an
environment's `hosts:` (a Fleet per list of hosts), and the load balancer beside the worker or on
one of those hosts, taking over from wherever it ran before."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import docker
from docker.errors import DockerException

from bot.domain import RolloutPlan
from bot.domain.app import DockerHost
from bot.errors import UnreachableError
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.hosts import Fleet, HostAccess
from bot.infra.targets.docker.lb_container import ContainerHAProxy, constantly, take_over
from bot.infra.targets.docker.world import load_balancer_in
from bot.ports import EventSink


class Placement:
    """Mixed into the DockerTarget, which sets these."""

    state_dir: Any
    host_access: HostAccess
    _client: Any
    _fleets: dict[tuple[DockerHost, ...], Fleet]
    _fleets_lock: threading.Lock

    def _own_engine(self):
        """The engine DOCKER_HOST names (the worker's own, by default)."""
        if self._client is None:
            self._client = docker.from_env()
        return self._client

    def _fleet(self, hosts: tuple[DockerHost, ...]) -> Fleet:
        with self._fleets_lock:
            if hosts not in self._fleets:
                # The own engine is looked at too: an environment that moves onto hosts retires
                # the replicas it had there as it would any old release's.
                self._fleets[hosts] = Fleet(hosts, self.host_access, former=self._own_engine)
            return self._fleets[hosts]

    def _say_hosts_down(self, plan: RolloutPlan, on_event: EventSink) -> None:
        """A host that does not answer: its replicas are started on the others, and the deploy says so."""
        if not plan.app.hosts:
            return
        fleet = self._fleet(plan.app.hosts)
        fleet.live()
        for url, why in sorted(fleet.down.items()):
            others = [h.url for h in plan.app.hosts if h.url not in fleet.down]
            on_event(f"Docker host {url} does not answer ({why}); its replicas are replaced on "
                     f"{', '.join(others)}", step="host_down", host=url)

    def _reachable(self, plan: RolloutPlan) -> None:
        """An UnreachableError when the load balancer's Docker host does not answer: nothing
        serves the environment, and no repair can fix that from here."""
        if not plan.app.lb_host:
            return
        fleet = self._fleet(plan.app.hosts)
        with contextlib.suppress(DockerException):
            fleet.live()
        if plan.app.lb_host in fleet.down:
            what = f"{plan.service}/{plan.environment}"
            raise UnreachableError(f"the load balancer of {what} runs on Docker host {plan.app.lb_host}, which does "
                                   f"not answer ({fleet.down[plan.app.lb_host]}): {what} is unreachable until it "
                                   "answers again")

    def _previous_load_balancers(self, plan: RolloutPlan, lb: HAProxy) -> list[HAProxy]:
        """Load balancers of this environment running where its config no longer puts it."""
        found: list[HAProxy] = []
        local = load_balancer_in(self.state_dir, plan.service, plan.environment, plan.listen)
        if isinstance(lb, ContainerHAProxy) and local.pid() is not None:
            found.append(local)
        if plan.app.hosts:
            for host, client in self._fleet(plan.app.hosts).live():
                if isinstance(lb, ContainerHAProxy) and host.url == plan.app.lb_host:
                    continue
                other = ContainerHAProxy(self.state_dir, plan.service, plan.environment, plan.listen,
                                         constantly(client), "", host.address, where=f"Docker host {host.url}")
                if other.pid() is not None:
                    found.append(other)
        return found

    def _ensure_load_balancer(self, plan: RolloutPlan, lb: HAProxy, on_event: EventSink) -> bool:
        """Start the load balancer where the config puts it, taking over from where it ran before."""
        previous = self._previous_load_balancers(plan, lb)
        if previous:
            take_over(lb, previous, f"{plan.service}/{plan.environment}", on_event)
            return False
        return lb.ensure_running()

