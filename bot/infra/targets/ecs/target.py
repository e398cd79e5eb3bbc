"""Target on AWS ECS: a new task-definition revision per image, the rollout followed to steady
or failed, and the bake judged by the load balancer's target health and the configured
CloudWatch alarms.

The service's deployment controller decides how a release goes out:

- ECS: a service update followed by its deployment id (bot/infra/targets/ecs/rolling.py). The
  service's own deployment settings are kept; the circuit breaker and the CloudWatch alarms (as
  ECS deployment alarms) are added when absent. A `blue-green` or `canary` plan uses ECS's own
  BLUE_GREEN or CANARY strategy when the service has the second target group and listener rule
  it needs, else it is a rolling update that starts each new task before an old one drains.
- EXTERNAL: blue-green through task sets. The new revision gets its own task set at 100% behind
  the service's load balancer; once it is steady it becomes the primary set and the previous set
  is scaled to 0% and kept, so a rollback scales it back up and makes it primary again without
  registering or creating anything. `finish` deletes the sets that are not primary.
- CODE_DEPLOY: refused with an EcsError. Its traffic shift belongs to a CodeDeploy application
  and deployment group that `.github/deploy.yml` does not name and moto cannot model.
"""

from __future__ import annotations

import boto3

from bot.config import EcsSettings
from bot.domain import Replica, RolloutPlan
from bot.infra.aws.client import aws_client, call
from bot.infra.aws.errors import EcsControllerError, EcsError, EcsNotFoundError, ThrottledError
from bot.infra.targets.ecs.deployment_config import missing_for_traffic_shift
from bot.infra.targets.ecs.model import (
    EcsService,
    ImagePusher,
    TaskSetError,
    image_tag,
)
from bot.infra.targets.ecs.rolling import Rolling
from bot.infra.targets.ecs.task_sets import TaskSets
from bot.ports import EventSink

__all__ = ["EcsControllerError", "EcsError", "EcsNotFoundError", "EcsTarget", "TaskSetError", "ThrottledError"]


class EcsTarget(Rolling, TaskSets):
    """bot.ports.Target on one ECS service (`settings`)."""

    def __init__(self, settings: EcsSettings, session: boto3.Session | None = None,
                 builder: ImagePusher | None = None, poll: float = 5.0, rollout_timeout: float | None = None):
        self.settings = settings
        self.builder = builder
        self.poll = poll
        self.rollout_timeout = settings.timeout_seconds if rollout_timeout is None else rollout_timeout
        # Alarms in ALARM before each sha's deploy started: reported, not held against it.
        self.alarming_before: dict[str, set[str]] = {}
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
            self._roll_out_task_sets(raw, service, image, on_event, plan)
            return
        if service.controller != "ECS":
            raise EcsControllerError(
                f"ECS service {service.name} uses the {service.controller} deployment controller; Mainline rolls "
                "out through the ECS controller (rolling with the circuit breaker) or the EXTERNAL one (blue-green "
                "with task sets), not through a CodeDeploy application and deployment group",
                operation="roll_out")
        self.roll_out_ecs(raw, service, image, plan, self._strategy(raw, plan, on_event), on_event)

    def _strategy(self, raw: dict, plan: RolloutPlan, on_event: EventSink) -> str | None:
        """ECS's own strategy to ask for: the `ecs.strategy` named, else the environment's when the
        service can do it; None leaves the service's as it is."""
        if self.settings.strategy is not None:
            return self.settings.strategy
        if plan.strategy in ("blue-green", "canary"):
            missing = missing_for_traffic_shift(raw, plan.strategy)
            if not missing:
                return plan.strategy
            on_event(f"ECS service {raw.get('serviceName')} lacks {missing}: {plan.strategy} is a rolling update "
                     "that starts each new task before an old one drains", step="ecs_blue_green_as_rolling")
        return None

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        service = self.service()
        if service.controller == "EXTERNAL":
            self._finish_task_sets(service, plan, on_event)
            return
        # ECS drained and stopped the old tasks itself; the old revision stays registered for
        # the audit (a rollback registers the current one with the previous image).
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
