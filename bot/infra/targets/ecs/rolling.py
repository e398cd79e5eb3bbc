"""A release on a service with the ECS deployment controller: register the *current* task
definition with the new image, merge (never overwrite) the deployment settings, start one
deployment and follow exactly that deployment (its id and its task definition) to its end.

On FAILED or a timeout the service's events and the stopped tasks' reasons are read first: an
infrastructure failure (image pull, secret, placement, configuration, another deploy replacing
ours) raises InfrastructureFailure, so the release is not judged; the rest raises RolloutError
with the evidence. The deployment in flight is tagged on the service (`mainline:rollout`), so a
restarted worker follows it instead of starting another."""

from __future__ import annotations

import time
from typing import Any

from bot.config import EcsSettings
from bot.domain import RolloutPlan
from bot.errors import InfrastructureFailure, RolloutError
from bot.infra.aws.client import call
from bot.infra.targets.ecs.bake import Bake
from bot.infra.targets.ecs.definitions import TaskDefinitions
from bot.infra.targets.ecs.deployment_config import merged, refuse_unless_ready
from bot.infra.targets.ecs.diagnosis import diagnose
from bot.infra.targets.ecs.model import EcsDeployment, EcsService, settled
from bot.infra.targets.ecs.tags import ALARMS_TAG, ROLLOUT_TAG, alarms_value, drop_tag, read_tag, write_tag
from bot.ports import EventSink


def runs(service: EcsService, deployment: EcsDeployment, task_definition: str) -> bool:
    """Whether `deployment` is the one of `task_definition`. A lone, completed primary deployment
    naming another revision than its service is moto's model (it never changes a deployment's
    task definition); ECS itself starts a new deployment for each."""
    if deployment.task_definition == task_definition:
        return True
    return (service.task_definition == task_definition and len(service.deployments) == 1
            and deployment.status == "PRIMARY" and deployment.completed)


FIRST_POLL = 0.5  # seconds before the second look at a deployment; doubling up to `poll`


class Rolling(TaskDefinitions, Bake):
    """The ECS-controller half of an ECS target (a mixin of EcsTarget)."""

    settings: EcsSettings
    ecs: Any
    poll: float
    rollout_timeout: float
    alarming_before: dict[str, set[str]]

    def service_description(self) -> dict:
        raise NotImplementedError

    def roll_out_ecs(self, raw: dict, service: EcsService, image: str, plan: RolloutPlan, strategy: str | None,
                     on_event: EventSink) -> None:
        refuse_unless_ready(raw, strategy)
        self.check_alarms_exist()
        before = {name for name in self.alarms_firing()}
        self.alarming_before[plan.sha] = before
        if self.settings.alarms:
            write_tag(self.ecs, service.arn, ALARMS_TAG, alarms_value(plan.sha, self.settings.alarms, before))
        if before:
            on_event(f"{', '.join(sorted(before))} already in ALARM before the deploy: reported, not held against "
                     f"{plan.sha[:12]}", step="ecs_alarm_before", alarms=sorted(before))
        resumed = self._resume(raw, service, plan, on_event)
        if resumed:
            return
        current, tags = self.task_definition_with_tags(service.task_definition)
        primary = service.primary
        if self.container_image(current) == image and primary is not None:
            on_event(f"ECS service {service.name} already runs {image}; following its deployment",
                     step="ecs_already_current", task_definition=service.task_definition, deployment=primary.id)
            self._follow(primary.id, primary.task_definition or service.task_definition, plan, on_event)
            return
        arn = self.revision_like(current, image)
        if arn:
            on_event(f"re-using task definition {arn}: the current one with {image}", step="ecs_task_definition_reused",
                     task_definition=arn, previous_task_definition=service.task_definition)
        else:
            arn = self.register_like(current, tags, image)
            on_event(f"registered task definition {arn}: {service.task_definition} with {image}, everything else "
                     "kept", step="ecs_task_definition_registered", task_definition=arn,
                     previous_task_definition=service.task_definition)
        params: dict[str, Any] = {"cluster": self.settings.cluster, "service": self.settings.service,
                                  "taskDefinition": arn}
        config, notes = merged(raw.get("deploymentConfiguration"), self.settings.alarms, strategy,
                               plan.health.bake, self.settings.canary_percent)
        for note in notes:
            on_event(f"ECS service {service.name}: {note}", step="ecs_setting_added")
        if config is not None:
            params["deploymentConfiguration"] = config
        updated = EcsService.parse(call(self.ecs, "update_service", **params)["service"])
        ours = next((d for d in updated.deployments if d.status == "PRIMARY" and runs(updated, d, arn)), None)
        if ours is None:
            raise RolloutError(f"ECS accepted the update of {service.name} but shows no primary deployment of {arn}")
        self._tag(service.arn, f"{plan.sha} {ours.id} {arn}")
        on_event(f"ECS deployment {ours.id} started for {arn}", step="ecs_deployment_started",
                 deployment=ours.id, task_definition=arn, previous_task_definition=service.task_definition)
        self._follow(ours.id, arn, plan, on_event)

    # -- identity kept across a restart ------------------------------------------------------

    def _resume(self, raw: dict, service: EcsService, plan: RolloutPlan, on_event: EventSink) -> bool:
        """Follow the deployment a previous worker started for this sha, if the service names one."""
        recorded = self._recorded(service.arn)
        if recorded is None or recorded[0] != plan.sha:
            return False
        _, deployment_id, arn = recorded
        if service.deployment(deployment_id) is None and service.task_definition != arn:
            return False  # long gone and replaced: start anew
        on_event(f"resuming ECS deployment {deployment_id} ({arn}) started before a restart",
                 step="ecs_resumed", deployment=deployment_id, task_definition=arn)
        if service.deployment(deployment_id) is None:
            return True  # it finished and ECS dropped it; the service runs its task definition
        self._follow(deployment_id, arn, plan, on_event)
        return True

    def _recorded(self, service_arn: str) -> tuple[str, str, str] | None:
        parts = read_tag(self.ecs, service_arn, ROLLOUT_TAG).split(" ")
        return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None

    def _tag(self, service_arn: str, value: str) -> None:
        write_tag(self.ecs, service_arn, ROLLOUT_TAG, value)

    def _untag(self, service_arn: str) -> None:
        drop_tag(self.ecs, service_arn, ROLLOUT_TAG)

    # -- follow ----------------------------------------------------------------------------

    def _follow(self, deployment_id: str, task_definition: str, plan: RolloutPlan, on_event: EventSink) -> None:
        deadline = time.monotonic() + self.rollout_timeout
        seen: tuple | None = None
        looks = 0
        before = self.alarming_before.get(plan.sha, set())
        while True:
            raw = self.service_description()
            service = EcsService.parse(raw)
            deployment = service.deployment(deployment_id)
            replaced = deployment is None or not runs(service, deployment, task_definition) or (
                deployment.status != "PRIMARY" and not deployment.has_failed)
            if replaced:
                replacement = service.primary
                if replacement is not None and replacement.task_definition == task_definition \
                        and replacement.id != deployment_id:
                    # A forced new deployment of the same revision: its tasks run our code; follow it.
                    on_event(f"ECS deployment {deployment_id} was replaced by {replacement.id} of the same task "
                             "definition; following that one", step="ecs_followed_replacement",
                             deployment=replacement.id, task_definition=task_definition)
                    deployment_id = replacement.id
                    continue
                if any(f"deployment {deployment_id} deployment failed" in e.get("message", "")
                       for e in raw.get("events", [])):
                    # The circuit breaker failed ours and ECS already dropped it: not a replacement.
                    gone = EcsDeployment(deployment_id, "INACTIVE", task_definition, "FAILED", "", 0, 0, 0)
                    raise self._failure(raw, service, gone, f"ECS deployment {deployment_id} failed and was "
                                        "rolled back by the circuit breaker", on_event)
                raise self._replaced(service, deployment_id, on_event)
            assert deployment is not None
            state = (deployment.rollout_state, deployment.running, deployment.desired, deployment.failed_tasks)
            if state != seen:
                seen = state
                on_event(f"ECS deployment {deployment.id}: {deployment.rollout_state or 'no rollout state'}, "
                         f"{deployment.running}/{deployment.desired} running, {deployment.failed_tasks} failed",
                         step="ecs_progress", deployment=deployment.id, rollout_state=deployment.rollout_state,
                         running=deployment.running, desired=deployment.desired, failed_tasks=deployment.failed_tasks)
            if deployment.has_failed:
                raise self._failure(raw, service, deployment, f"ECS deployment {deployment.id} failed "
                                    f"({deployment.failed_tasks} tasks failed): "
                                    f"{deployment.reason or 'no reason given'}", on_event)
            if settled(service, deployment) and deployment.running >= deployment.desired:
                self._untag(service.arn)
                return
            fresh = {name: why for name, why in self.alarms_firing().items() if name not in before}
            if fresh:
                raise RolloutError(f"during ECS deployment {deployment.id}: {next(iter(fresh.values()))}")
            if time.monotonic() >= deadline:
                raise self._failure(raw, service, deployment, f"ECS deployment {deployment.id} did not settle in "
                                    f"{self.rollout_timeout:g}s ({deployment.running}/{deployment.desired} running)",
                                    on_event)
            # Soon at first (most deployments settle or fail in seconds on a warm cluster), then every `poll`.
            looks += 1
            time.sleep(min(self.poll, FIRST_POLL * 2 ** min(looks - 1, 16)))

    def _replaced(self, service: EcsService, deployment_id: str, on_event: EventSink) -> InfrastructureFailure:
        """Another deploy replaced ours: theirs now owns the service, so nothing is put back."""
        primary = service.primary
        now = f"{primary.id} of {primary.task_definition}" if primary else service.task_definition
        reason = (f"ECS deployment {deployment_id} was replaced by another deploy of {service.name} ({now}); "
                  "it is left as it is, and this release was not judged")
        on_event(reason, step="ecs_replaced", deployment=deployment_id)
        self._untag(service.arn)
        return InfrastructureFailure(reason, "replaced", (now,), restore=False)

    def _failure(self, raw: dict, service: EcsService, deployment: EcsDeployment, headline: str,
                 on_event: EventSink) -> Exception:
        """Diagnose before blaming: the service's events and the stopped tasks' reasons."""
        diagnosis = diagnose(self.ecs, self.settings.cluster, raw, deployment.task_definition, deployment.created_at)
        self._untag(service.arn)
        evidence = [*diagnosis.stopped, *diagnosis.events]
        on_event(f"{headline}; " + (" | ".join(evidence[:3]) or "ECS gave no events and no stopped tasks"),
                 step="ecs_diagnosis", deployment=deployment.id, **diagnosis.data())
        if diagnosis.infrastructure:
            return InfrastructureFailure(f"{diagnosis.summary} ({headline})", diagnosis.kind, tuple(evidence))
        detail = f"; {evidence[0]}" if evidence else ""
        return RolloutError(f"{headline}{detail}")
