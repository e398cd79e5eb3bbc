"""Roles without traffic (workers, schedulers): replaced one container at a time. A new container
is started, becomes ready (its Docker HEALTHCHECK says healthy, or without one it keeps running
for `min_ready` seconds), and only then is an old one stopped with its stop signal and grace."""

from __future__ import annotations

import time

from docker.errors import NotFound

from bot.domain import RolloutPlan
from bot.domain.app import Role
from bot.errors import RolloutError
from bot.infra.targets.docker.containers import ContainerOps
from bot.infra.targets.docker.world import (
    LABEL_ENVIRONMENT,
    LABEL_ROLE,
    LABEL_SERVICE,
    LABEL_SHA,
    LABEL_SPEC,
    STALE,
    Instance,
)
from bot.ports import EventSink


class RoleOps(ContainerOps):
    def _role_instances(self, plan: RolloutPlan, role: Role | None) -> list[Instance]:
        """Containers of `role` (of every role but the web one when None), a container of the
        plan's sha with another spec seen as another release."""
        spec = self._spec()
        found = self.client.containers.list(
            all=True, ignore_removed=True,
            filters={"label": [f"{LABEL_SERVICE}={plan.service}", f"{LABEL_ENVIRONMENT}={plan.environment}",
                               LABEL_ROLE]})
        result = []
        for c in found:
            name = c.labels.get(LABEL_ROLE, "")
            if name == spec.web.name or (role is not None and name != role.name):
                continue
            sha = c.labels.get(LABEL_SHA, "")
            image = c.attrs.get("Config", {}).get("Image", "")
            if image and image == plan.image:
                sha = plan.sha  # the same image under another sha (a revert): the same release
            wanted = next((r for r in plan.app.others if r.name == name), None)
            other_spec = wanted is not None and spec.strict and c.labels.get(LABEL_SPEC) != spec.digest(wanted)
            if sha == plan.sha and (wanted is None or other_spec):
                sha += STALE
            result.append(Instance(c.name, sha, 0, image, c.status == "running", c))
        return sorted(result, key=lambda i: i.name)

    def _roll_role(self, plan: RolloutPlan, role: Role, on_event: EventSink) -> None:
        """Until `role.replicas` ready containers of the plan run, and nothing else of the role."""
        while True:
            insts = self._role_instances(plan, role)
            for inst in insts:
                if not inst.running:
                    self._remove(inst, on_event)
            new = [i for i in insts if i.running and i.sha == plan.sha]
            old = [i for i in insts if i.running and i.sha != plan.sha]
            if len(new) < role.replicas:
                fresh = self._start_role(plan, role, insts, on_event)
                self._await_ready(plan, role, fresh, on_event)
                if old:
                    self._stop_role(role, old[0], on_event)
            elif old:
                self._stop_role(role, old[0], on_event)
            elif len(new) > role.replicas:
                self._stop_role(role, new[-1], on_event)
            else:
                return

    def _finish_roles(self, plan: RolloutPlan, on_event: EventSink) -> None:
        """After a good bake: containers of other releases, and of roles no longer configured, go."""
        for inst in self._role_instances(plan, None):
            if inst.sha != plan.sha:
                role = next((r for r in plan.app.others if inst.name.startswith(self._role_prefix(plan, r))), None)
                self._stop_role(role or Role("gone"), inst, on_event)

    def _discard_roles(self, plan: RolloutPlan, on_event: EventSink) -> None:
        for inst in self._role_instances(plan, None):
            if inst.sha.removesuffix(STALE) == plan.sha:
                self._remove(inst, on_event)

    @staticmethod
    def _role_prefix(plan: RolloutPlan, role: Role) -> str:
        return f"mainline-{plan.service}-{plan.environment}-{role.name}-"

    def _start_role(self, plan: RolloutPlan, role: Role, insts: list[Instance], on_event: EventSink) -> Instance:
        spec = self._spec()
        name = self._fresh_name(f"{self._role_prefix(plan, role)}{plan.sha[:12]}", {i.name for i in insts})
        labels = {LABEL_SERVICE: plan.service, LABEL_ENVIRONMENT: plan.environment, LABEL_SHA: plan.sha,
                  LABEL_ROLE: role.name, LABEL_SPEC: spec.digest(role)}
        container = self.client.containers.run(plan.image, detach=True, name=name, network_mode="host",
                                               labels=labels, **spec.run_kwargs(role, None))
        on_event(f"started {role.name} container {name}", step="role_started", role=role.name, replica=name)
        return Instance(name, plan.sha, 0, plan.image, True, container)

    def _await_ready(self, plan: RolloutPlan, role: Role, inst: Instance, on_event: EventSink) -> None:
        started = time.monotonic()
        deadline = started + max(plan.health.timeout, role.min_ready + 5)
        while True:
            inst.container.reload()
            state = inst.container.attrs.get("State", {})
            health = (state.get("Health") or {}).get("Status")
            crashed = state.get("Restarting") or state.get("Status") in ("exited", "dead") or \
                inst.container.attrs.get("RestartCount", 0) > 0
            settled = health is None and time.monotonic() - started >= role.min_ready
            if not crashed and (health == "healthy" or settled):
                on_event(f"{inst.name} is ready", step="role_ready", role=role.name, replica=inst.name)
                return
            if crashed or health == "unhealthy" or time.monotonic() > deadline:
                why = "exited" if crashed else "is unhealthy" if health == "unhealthy" else "was not ready in time"
                logs = self._logs(inst)
                self._remove(inst, on_event)
                raise RolloutError(f"{role.name} container {inst.name} ({plan.image}) {why}: {logs}; "
                                   "the previous containers of the role keep running")
            time.sleep(0.2)

    def _stop_role(self, role: Role, inst: Instance, on_event: EventSink) -> None:
        """Stop with the role's signal (set when the container was made) and grace, then remove."""
        try:
            inst.container.stop(timeout=int(role.stop_grace))
        except NotFound:
            return
        on_event(f"stopped {inst.name} ({role.stop_signal}, {role.stop_grace:g}s grace)", step="role_stopped",
                 role=role.name, replica=inst.name)
        self._remove(inst, on_event)
