"""Target on AWS ECS: a new task-definition revision per image, the rollout followed to steady
or failed, and the bake judged by the load balancer's target health and the configured
CloudWatch alarms.

The service's deployment controller decides how a release goes out:

- ECS: a rolling service update with the deployment circuit breaker on. Each new task is
  registered and healthy before an old one drains (minimumHealthyPercent=100, maximumPercent=200),
  so a `blue-green` plan on such a service is served by the same rolling update.
- EXTERNAL: blue-green through task sets. The new revision gets its own task set at 100% behind
  the service's load balancer; once it is steady it becomes the primary set and the previous set
  is scaled to 0% and kept, so a rollback scales it back up and makes it primary again without
  registering or creating anything. `finish` deletes the sets that are not primary.
- CODE_DEPLOY: refused with an EcsError. Its traffic shift belongs to a CodeDeploy application
  and deployment group that `.github/deploy.yml` does not name and moto cannot model.
"""


from __future__ import annotations

import time

import boto3

from bot.config import EcsSettings
from bot.domain import Replica, RolloutPlan
from bot.errors import RolloutError
from bot.infra.aws.client import aws_client, call
from bot.infra.aws.errors import EcsControllerError, EcsError, EcsNotFoundError, ThrottledError
from bot.infra.targets.ecs.bake import Bake
from bot.infra.targets.ecs.model import (
    EcsService,
    ImagePusher,
    TaskSetError,
    image_tag,
    settled,
)
from bot.infra.targets.ecs.task_sets import TaskSets
from bot.ports import EventSink

__all__ = ["EcsControllerError", "EcsError", "EcsNotFoundError", "EcsTarget", "TaskSetError", "ThrottledError"]


class EcsTarget(TaskSets, Bake):
    """bot.ports.Target on one ECS service (`settings`)."""

    def __init__(self, settings: EcsSettings, session: boto3.Session | None = None,
                 builder: ImagePusher | None = None, poll: float = 5.0, rollout_timeout: float = 1800.0):
        self.settings = settings
        self.builder = builder
        self.poll = poll
        self.rollout_timeout = rollout_timeout
        # Public so tests can put a botocore Stubber on them.
        self.ecs = aws_client(session, "ecs", settings.region)
        self.elbv2 = aws_client(session, "elbv2", settings.region)
        self.cloudwatch = aws_client(session, "cloudwatch", settings.region)

    # -- observe ---------------------------------------------------------------------------

    def service(self) -> EcsService:
        return EcsService.parse(self.service_description())

    def service_description(self) -> dict:
        """describe_services' raw answer for our service (a new task set copies its placement)."""
        resp = call(self.ecs, "describe_services", cluster=self.settings.cluster, services=[self.settings.service])
        for raw in resp.get("services", []):
            if raw.get("status") != "INACTIVE":
                return raw
        raise EcsNotFoundError(f"ECS service {self.settings.service} not found in cluster {self.settings.cluster}",
                               "ServiceNotFoundException", "describe_services")


    def roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
        image = self._publish(plan, on_event)
        raw = self.service_description()
        service = EcsService.parse(raw)
        if service.controller == "EXTERNAL":
            self._roll_out_task_sets(raw, service, image, on_event)
            return
        if service.controller != "ECS":
            raise EcsControllerError(
                f"ECS service {service.name} uses the {service.controller} deployment controller; Mainline rolls "
                "out through the ECS controller (rolling with the circuit breaker) or the EXTERNAL one (blue-green "
                "with task sets), not through a CodeDeploy application and deployment group",
                operation="roll_out")
        if plan.strategy == "blue-green":
            on_event(f"ECS service {service.name} is on the ECS controller: blue-green is a rolling update that "
                     "starts each new task before an old one drains", step="ecs_blue_green_as_rolling")
        current = self.task_definition(service.task_definition)
        if self.container_image(current) == image and service.primary is not None:
            on_event(f"ECS service {service.name} already runs {image}; following its deployment",
                     step="ecs_already_current", task_definition=service.task_definition)
            self._follow(service.primary.id, service.task_definition, on_event)
            return
        arn = self.revision_with_image(current["family"], image)
        if arn:
            on_event(f"re-using task definition {arn} for {image}", step="ecs_task_definition_reused",
                     task_definition=arn)
        else:
            arn = self._register(current, image)
            on_event(f"registered task definition {arn} for {image}", step="ecs_task_definition_registered",
                     task_definition=arn)
        resp = call(self.ecs, "update_service", cluster=self.settings.cluster, service=self.settings.service,
                    taskDefinition=arn, deploymentConfiguration={
                        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                        "minimumHealthyPercent": 100, "maximumPercent": 200})
        primary = EcsService.parse(resp["service"]).primary
        if primary is None:
            raise RolloutError(f"ECS accepted the update of {service.name} but shows no primary deployment")
        on_event(f"ECS deployment {primary.id} started for {arn}", step="ecs_deployment_started",
                 deployment=primary.id, task_definition=arn)
        self._follow(primary.id, arn, on_event)

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        service = self.service()
        if service.controller == "EXTERNAL":
            self._finish_task_sets(service, plan, on_event)
            return
        # ECS drained and stopped the old tasks itself; the old revision stays registered
        # because rolling back re-uses it.
        on_event(f"ECS service {self.settings.service} runs {plan.image} only", step="ecs_finished")

    def discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
        service = self.service()
        if service.controller == "EXTERNAL":
            self._discard_task_sets(service, plan, on_event)
            return
        # The circuit breaker stops a failed deployment's tasks and rolls the service back;
        # the bad revision stays registered so the record of what ran is kept.
        on_event(f"ECS stops the tasks of a failed deployment of {plan.sha[:12]} itself", step="ecs_discarded")

    def replicas(self, service: str, environment: str) -> list[Replica]:
        arns = call(self.ecs, "list_tasks", cluster=self.settings.cluster, serviceName=self.settings.service,
                    desiredStatus="RUNNING").get("taskArns", [])
        if not arns:
            return []
        tasks = call(self.ecs, "describe_tasks", cluster=self.settings.cluster, tasks=arns).get("tasks", [])
        # awsvpc tasks have no host port binding: the load balancer reaches the container port.
        port = dict(self.service().container_ports).get(self.settings.container)
        return [self._replica(task, port) for task in tasks]

    # -- blue-green on task sets (EXTERNAL controller) ---------------------------------------

    def _publish(self, plan: RolloutPlan, on_event: EventSink) -> str:
        if self.builder is None:
            return plan.image
        repository = self.settings.repository or self.settings.service
        image = self.builder.push(plan.image, repository, plan.sha)
        on_event(f"image {image} is in the registry ECS pulls from", step="ecr_pushed", image=image)
        return image

    def _follow(self, deployment_id: str, task_definition: str, on_event: EventSink) -> None:
        deadline = time.monotonic() + self.rollout_timeout
        seen: tuple | None = None
        while True:
            service = self.service()
            deployment = service.deployment(deployment_id)
            if deployment is None:
                # ECS drops a deployment once another replaced it (a circuit-breaker rollback).
                if service.task_definition == task_definition:
                    return
                raise RolloutError(f"ECS deployment {deployment_id} was replaced; the service runs "
                                   f"{service.task_definition}")
            state = (deployment.rollout_state, deployment.running, deployment.desired, deployment.failed_tasks)
            if state != seen:
                seen = state
                on_event(f"ECS deployment {deployment.id}: {deployment.rollout_state or 'no rollout state'}, "
                         f"{deployment.running}/{deployment.desired} running, {deployment.failed_tasks} failed",
                         step="ecs_progress", deployment=deployment.id, rollout_state=deployment.rollout_state,
                         running=deployment.running, desired=deployment.desired, failed_tasks=deployment.failed_tasks)
            if deployment.has_failed:
                raise RolloutError(f"ECS deployment {deployment.id} failed ({deployment.failed_tasks} tasks failed): "
                                   f"{deployment.reason or 'no reason given'}")
            if settled(service, deployment):
                return
            if time.monotonic() >= deadline:
                raise RolloutError(f"ECS deployment {deployment.id} did not settle in {self.rollout_timeout:g}s "
                                   f"({deployment.running}/{deployment.desired} running)")
            time.sleep(self.poll)

    def _replica(self, task: dict, lb_port: int | None) -> Replica:
        container: dict = next((c for c in task.get("containers", []) if c.get("name") == self.settings.container),
                               {})
        image = container.get("image", "")
        ip = next((n.get("privateIpv4Address") for n in container.get("networkInterfaces", [])), None)
        port = next((b.get("hostPort") for b in container.get("networkBindings", [])), lb_port)
        status = task.get("healthStatus", "UNKNOWN")
        return Replica(
            name=task["taskArn"].rsplit("/", 1)[-1], image=image, sha=image_tag(image),
            address=f"{ip or ''}:{port or ''}".strip(":"),
            healthy=None if status == "UNKNOWN" else status == "HEALTHY",
        )
