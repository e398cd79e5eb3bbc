"""The desired state, kept: what runs made to match the live release again, without a deploy.

A load balancer whose process is gone comes back with its config, and the live replicas go
back into it; a dead or removed replica is replaced; a container of another sha (or of the
live sha with another spec) is removed; each role gets its replica count back. Only the live
release is ever started: a repair never deploys and never reverts.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.domain import RolloutPlan
from bot.domain.app import Role
from bot.infra.targets.docker.haproxy import HAProxy, Server
from bot.infra.targets.docker.roles import RoleOps
from bot.infra.targets.docker.strategies import Strategies
from bot.infra.targets.docker.world import World
from bot.ports import EventSink


class Repairs(RoleOps, Strategies):
    load_balancer: Callable[..., HAProxy]  # the target's
    _say_hosts_down: Callable[[RolloutPlan, EventSink], None]  # the target's
    _ensure_load_balancer: Callable[[RolloutPlan, HAProxy, EventSink], bool]  # the target's

    def _in_shape(self, plan: RolloutPlan) -> bool:
        """Whether what runs already matches `plan`, judged without its secrets: a pass that
        finds nothing to repair reads no secret store."""
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        if not lb.running():
            return False
        world = self._observe(plan.service, plan.environment, lb)
        serving = world.serving(sha=plan.sha)
        if len(serving) != plan.replicas or len(world.servers) != len(serving) or \
                len(world.instances) != len(serving):
            return False
        if not all((inst := world.instance(s.name)) is not None and inst.running for s in serving):
            return False
        if self._crowded(plan, world) is not None:
            return False
        for role in plan.app.others:
            insts = self._role_instances(plan, role)
            if len(insts) != role.replicas or not all(i.running and i.sha == plan.sha for i in insts):
                return False
        return all(any(i.name.startswith(self._role_prefix(plan, r)) for r in plan.app.others)
                   for i in self._role_instances(plan, None))

    def _repair(self, plan: RolloutPlan, on_event: EventSink) -> list[str]:
        done: list[str] = []
        self._say_hosts_down(plan, on_event)
        lb = self.load_balancer(plan.service, plan.environment, plan.listen)
        if not lb.running():
            lb.stop()  # a stale pid file or socket of the dead process
            self._ensure_load_balancer(plan, lb, on_event)
            done.append(f"load balancer of {plan.service}/{plan.environment} was down; restarted on {plan.listen}")
        world = self._observe(plan.service, plan.environment, lb)
        for server in list(world.servers.values()):
            inst = world.instance(server.name)
            if inst is None or not inst.running or inst.sha != plan.sha:
                self._retire(lb, server.name, inst, on_event)
                why = ("is on no Docker host that answers" if inst is None else "had stopped" if not inst.running
                       else "runs another release")
                done.append(f"{server.name} {why}; took it out of the load balancer")
        for inst in world.instances:
            if inst.name not in world.servers and (inst.sha != plan.sha or not inst.running):
                self._remove(inst, on_event)
                done.append(f"removed {'stray' if inst.running else 'stopped'} container {inst.name}")
        while True:
            world = self._observe(plan.service, plan.environment, lb)
            serving = world.serving(sha=plan.sha)
            if len(serving) >= plan.replicas:
                break
            before = {s.name for s in serving}
            self._bring_up(plan, lb, world, on_event)
            added = {s.name for s in self._observe(plan.service, plan.environment, lb).serving(sha=plan.sha)} - before
            done.append(f"{plan.service} had {len(serving)} of {plan.replicas} web replicas; "
                        f"put {', '.join(sorted(added)) or 'one'} into service")
        # A host that comes back brings its old replicas: the others took their place meanwhile.
        world = self._observe(plan.service, plan.environment, lb)
        for inst in world.instances:
            if inst.name not in world.servers:
                self._remove(inst, on_event)
                done.append(f"removed surplus container {inst.name}")
        done += self._spread(plan, lb, on_event)
        for role in plan.app.others:
            done += self._repair_role(plan, role, on_event)
        for inst in self._role_instances(plan, None):
            if not any(inst.name.startswith(self._role_prefix(plan, r)) for r in plan.app.others):
                self._remove(inst, on_event)
                done.append(f"removed {inst.name}: its role is not in the live release")
        for line in done:
            on_event(f"repaired: {line}", step="repaired")
        return done

    def _crowded(self, plan: RolloutPlan, world: World) -> tuple[str, Server] | None:
        """On several hosts: (its host, a serving replica) of the most crowded answering host when
        another answering host has two fewer (as after a host came back empty)."""
        if not hasattr(self.client, "url_of"):
            return None
        per: dict[str, list[Server]] = {host.url: [] for host, _ in self.client.live()}
        for server in world.serving(sha=plan.sha):
            inst = world.instance(server.name)
            url = self.client.url_of(inst.container) if inst is not None else ""
            if url in per:
                per[url].append(server)
        most, least = max(per, key=lambda u: len(per[u])), min(per, key=lambda u: len(per[u]))
        return (most, per[most][-1]) if len(per[most]) - len(per[least]) > 1 else None

    def _spread(self, plan: RolloutPlan, lb: HAProxy, on_event: EventSink) -> list[str]:
        """Move replicas from the most crowded host to the emptiest, one at a time: a new one (placed
        where fewest of the release run) in service before the crowded one is drained."""
        done: list[str] = []
        for _ in range(plan.replicas):
            world = self._observe(plan.service, plan.environment, lb)
            crowded = self._crowded(plan, world)
            if crowded is None:
                break
            url, server = crowded
            self._bring_up(plan, lb, world, on_event)
            self._retire(lb, server.name, world.instance(server.name), on_event)
            done.append(f"moved a replica off {url}, which ran more than its share: {server.name} replaced")
        return done

    def _repair_role(self, plan: RolloutPlan, role: Role, on_event: EventSink) -> list[str]:
        done = []
        insts = self._role_instances(plan, role)
        for inst in insts:
            if not inst.running or inst.sha != plan.sha:
                self._remove(inst, on_event)
                done.append(f"removed {'stopped' if not inst.running else 'stray'} {role.name} container {inst.name}")
        live = [i for i in insts if i.running and i.sha == plan.sha]
        for extra in live[role.replicas:]:
            self._stop_role(role, extra, on_event)
            done.append(f"stopped {extra.name}: more {role.name} containers than the release's {role.replicas}")
        for _ in range(role.replicas - len(live)):
            fresh = self._start_role(plan, role, self._role_instances(plan, role), on_event)
            self._await_ready(plan, role, fresh, on_event)
            done.append(f"{role.name} had {len(live)} of {role.replicas} containers; started {fresh.name}")
        return done
