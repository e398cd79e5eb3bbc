"""Blue-green through task sets, on a service with the EXTERNAL deployment controller."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from bot.config import EcsSettings
from bot.domain import RolloutPlan
from bot.infra.aws.client import call
from bot.infra.aws.errors import EcsError, EcsNotFoundError
from bot.infra.targets.ecs.canary import WeightedCanary
from bot.infra.targets.ecs.definitions import TaskDefinitions
from bot.infra.targets.ecs.model import (
    FULL_PERCENT,
    FULL_SCALE,
    NO_SCALE,
    EcsService,
    EcsTaskSet,
    TaskSetError,
    task_set_placement,
)
from bot.infra.targets.ecs.traffic import Traffic
from bot.ports import EventSink


class TaskSets(TaskDefinitions, Traffic, WeightedCanary):
    """The task-set half of an ECS target (a mixin of EcsTarget)."""

    settings: EcsSettings
    ecs: Any
    poll: float
    rollout_timeout: float

    def task_sets(self) -> list[EcsTaskSet]:
        resp = call(self.ecs, "describe_task_sets", cluster=self.settings.cluster, service=self.settings.service)
        return [EcsTaskSet.parse(t) for t in resp.get("taskSets", [])]

    def task_set_image(self, task_set: EcsTaskSet) -> str:
        return self.container_image(self.task_definition(task_set.task_definition))

    def _roll_out_task_sets(self, raw: dict, service: EcsService, image: str, on_event: EventSink,
                            plan: RolloutPlan | None = None) -> None:
        groups = self.two_groups(service.target_groups)
        primary = service.primary_task_set
        if primary is not None and self.task_set_image(primary) == image:
            on_event(f"ECS service {service.name} already serves {image} from task set {primary.id}",
                     step="ecs_already_current", task_set=primary.id, task_definition=primary.task_definition)
            self._follow_task_set(primary.id, on_event)
            # A switch cut short: the listener, or the previous set's scale, as it was.
            if groups is not None and primary.target_group:
                self.switch_traffic(primary.target_group, on_event)
            elif groups is None:
                self._scale_down_others(primary, service.task_sets, on_event)
            return
        kept = next((t for t in service.task_sets
                     if t.status != "PRIMARY" and self.task_set_image(t) == image), None)
        if kept is not None:
            # Rolling back: the previous release's set is still there (warm, or scaled down).
            on_event(f"re-using task set {kept.id} ({kept.task_definition}) for {image}", step="ecs_task_set_reused",
                     task_set=kept.id, task_definition=kept.task_definition)
            if kept.scale < FULL_PERCENT:
                self._scale(kept, FULL_SCALE)
            incoming = kept
        else:
            incoming = self._create_task_set(raw, service, image, on_event, groups[1] if groups else None)
        self._follow_task_set(incoming.id, on_event)
        if groups is not None and kept is None and plan is not None and plan.strategy == "canary" \
                and plan.canary is not None:
            self.run_canary(groups[0], incoming.target_group or groups[1], plan.canary, on_event)
        if groups is not None:
            self.switch_traffic(incoming.target_group or groups[1], on_event)
        call(self.ecs, "update_service_primary_task_set", cluster=self.settings.cluster,
             service=self.settings.service, primaryTaskSet=incoming.arn)
        on_event(f"task set {incoming.id} is primary: ECS service {service.name} serves {image}",
                 step="ecs_task_set_primary", task_set=incoming.id, task_definition=incoming.task_definition)
        if groups is None:
            self._scale_down_others(incoming, service.task_sets, on_event)
            return
        for other in service.task_sets:
            if other.id != incoming.id:
                on_event(f"task set {other.id} stays warm at {other.scale:g}% behind "
                         f"{(other.target_group or '?').rsplit(':', 1)[-1]}: a rollback is one switch back",
                         step="ecs_task_set_warm", task_set=other.id, task_definition=other.task_definition)

    def _create_task_set(self, raw: dict, service: EcsService, image: str, on_event: EventSink,
                         target_group: str | None = None) -> EcsTaskSet:
        primary = service.primary_task_set
        current_arn = primary.task_definition if primary is not None else service.task_definition
        if not current_arn:
            raise EcsError(f"ECS service {service.name} has no primary task set and no task definition to copy "
                           "for a new release", operation="roll_out")
        current, tags = self.task_definition_with_tags(current_arn)
        arn = self.revision_like(current, image)
        if arn:
            on_event(f"re-using task definition {arn}: the current one with {image}", step="ecs_task_definition_reused",
                     task_definition=arn, previous_task_definition=current_arn)
        else:
            arn = self.register_like(current, tags, image)
            on_event(f"registered task definition {arn}: {current_arn} with {image}, everything else kept",
                     step="ecs_task_definition_registered", task_definition=arn, previous_task_definition=current_arn)
        source = next((t for t in raw.get("taskSets", []) if t.get("status") == "PRIMARY"), raw)
        placement = task_set_placement(source)
        if target_group is not None:  # the idle group: no production traffic until the switch
            placement["loadBalancers"] = [{**lb, "targetGroupArn": target_group}
                                          for lb in placement.get("loadBalancers", [])]
        created = EcsTaskSet.parse(call(
            self.ecs, "create_task_set", cluster=self.settings.cluster, service=self.settings.service,
            taskDefinition=arn, scale=FULL_SCALE, **placement)["taskSet"])
        on_event(f"task set {created.id} created for {arn} at 100%"
                 + (f" behind {target_group.rsplit(':', 1)[-1]}" if target_group else ""),
                 step="ecs_task_set_created", task_set=created.id, task_definition=arn)
        return created

    def _follow_task_set(self, task_set_id: str, on_event: EventSink) -> None:
        deadline = time.monotonic() + self.rollout_timeout
        seen: tuple | None = None
        while True:
            current = next((t for t in self.task_sets() if t.id == task_set_id), None)
            if current is None:
                raise TaskSetError(f"task set {task_set_id} of ECS service {self.settings.service} went away "
                                   "before it was steady")
            state = (current.stability, current.running, current.desired)
            if state != seen:
                seen = state
                on_event(f"task set {current.id}: {current.stability or 'no stability status'}, "
                         f"{current.running}/{current.desired} running", step="ecs_task_set_progress",
                         task_set=current.id, stability=current.stability, running=current.running,
                         desired=current.desired)
            if current.steady:
                return
            if time.monotonic() >= deadline:
                raise TaskSetError(f"task set {current.id} was not steady in {self.rollout_timeout:g}s "
                                   f"({current.stability}, {current.running}/{current.desired} running)")
            time.sleep(self.poll)

    def _scale(self, task_set: EcsTaskSet, scale: dict) -> None:
        call(self.ecs, "update_task_set", cluster=self.settings.cluster, service=self.settings.service,
             taskSet=task_set.arn, scale=scale)

    def _scale_down_others(self, primary: EcsTaskSet, task_sets: tuple[EcsTaskSet, ...], on_event: EventSink) -> None:
        """Every other set to 0%: with one target group, a set's running tasks take traffic. The
        sets stay so a rollback can scale one back up."""
        for other in task_sets:
            if other.id != primary.id and other.scale > 0:
                self._scale(other, NO_SCALE)
                on_event(f"task set {other.id} ({other.task_definition}) scaled to 0% and kept for a rollback",
                         step="ecs_task_set_kept", task_set=other.id, task_definition=other.task_definition)

    def _finish_task_sets(self, service: EcsService, plan: RolloutPlan, on_event: EventSink) -> None:
        primary = service.primary_task_set
        if primary is None or self.task_set_image(primary) != plan.image:
            # Deleting around a primary that is not this release could delete the release itself.
            raise EcsError(f"ECS service {service.name}'s primary task set does not run {plan.image}; "
                           "not deleting its other task sets", operation="finish")
        for other in service.task_sets:
            if other.id != primary.id:
                self._delete_task_set(other, on_event)
        on_event(f"ECS service {service.name} runs {plan.image} only, from task set {primary.id}",
                 step="ecs_finished", task_set=primary.id)

    def _discard_task_sets(self, service: EcsService, plan: RolloutPlan, on_event: EventSink) -> None:
        for task_set in service.task_sets:
            if task_set.status != "PRIMARY" and self.task_set_image(task_set) == plan.image:
                self._delete_task_set(task_set, on_event)
        on_event(f"no task set of ECS service {service.name} serves {plan.sha[:12]}", step="ecs_discarded")

    def _delete_task_set(self, task_set: EcsTaskSet, on_event: EventSink) -> None:
        with contextlib.suppress(EcsNotFoundError):  # already gone: what we wanted
            call(self.ecs, "delete_task_set", cluster=self.settings.cluster, service=self.settings.service,
                 taskSet=task_set.arn, force=True)
        on_event(f"task set {task_set.id} ({task_set.task_definition}) deleted", step="ecs_task_set_deleted",
                 task_set=task_set.id, task_definition=task_set.task_definition)

    # -- steps -----------------------------------------------------------------------------
