"""Rolling and blue-green roll-outs on one Docker host: each new replica healthy before it takes
traffic, each old one drained before it stops. Every step observes the world first."""

from __future__ import annotations

from bot.domain import RolloutPlan
from bot.errors import RolloutError
from bot.infra.targets.docker.containers import ContainerOps
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.world import Instance, World
from bot.ports import EventSink

DRAIN_TIMEOUT = 30.0


class Strategies(ContainerOps):

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
        raise RolloutError(f"{inst.name} ({plan.image}) failed its health check ({plan.health.failures} bad "
                           f"answers in a row, or no healthy answer in {plan.health.timeout:g}s); "
                           f"the previous release keeps serving. Last probe: {self._spec().masker(output)}")

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
