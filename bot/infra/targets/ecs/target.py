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

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bot.config import EcsSettings
from bot.domain import Replica, RolloutPlan, VerifyReport
from bot.errors import MainlineError, NotFoundError, RolloutError, TransientError
from bot.ports import EventSink
from bot.retry import aws_api

# botocore retries once at most on its own (max_attempts counts the first call), so the
# `aws_api` tenacity policy is the one retry policy, with its log line per retry.
BOTO_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30)

THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException",
    "ProvisionedThroughputExceededException", "SlowDown",
})
NOT_FOUND_CODES = frozenset({
    "ServiceNotFoundException", "ClusterNotFoundException", "TargetGroupNotFound", "TaskSetNotFoundException",
    "RepositoryNotFoundException", "ImageNotFoundException", "ResourceNotFoundException",
})

# Fields describe_task_definition returns that register_task_definition refuses.
READ_ONLY_TASK_FIELDS = frozenset({
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
    "registeredAt", "registeredBy", "deregisteredAt",
})
# How many recent revisions to search for one already running an image.
REVISION_SEARCH_LIMIT = 50
# What a new task set copies from the primary set (or, for the first, from the service).
TASK_SET_PLACEMENT = ("loadBalancers", "serviceRegistries", "networkConfiguration", "launchType",
                      "capacityProviderStrategy", "platformVersion")
FULL_PERCENT = 100.0
FULL_SCALE = {"value": FULL_PERCENT, "unit": "PERCENT"}
NO_SCALE = {"value": 0.0, "unit": "PERCENT"}
TARGET_STATES_LEAVING = frozenset({"draining", "unhealthy.draining"})
MISSING_ALARM = " does not exist"


class EcsError(MainlineError):
    """An AWS call was refused for a reason retrying will not fix."""

    def __init__(self, message: str, code: str = "", operation: str = ""):
        super().__init__(message)
        self.code = code
        self.operation = operation


class EcsNotFoundError(EcsError, NotFoundError):
    """The cluster, service, target group or image named in the settings does not exist."""


class EcsControllerError(EcsError):
    """The service's deployment controller is one Mainline does not drive (CODE_DEPLOY)."""


class TaskSetError(RolloutError):
    """A blue-green task set did not become steady, or vanished while we waited for it."""


class ThrottledError(TransientError):
    """AWS throttled us or answered 5xx; the `aws_api` policy retries it."""


def aws_client(session: boto3.Session | None, name: str, region: str):
    """A client that leaves retrying to us; boto3 reads AWS_ENDPOINT_URL itself."""
    return (session or boto3.Session()).client(name, region_name=region, config=BOTO_CONFIG)


def translate(exc: Exception, operation: str) -> MainlineError:
    """Our exception for a botocore one: throttling and 5xx are transient, the rest named."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = f"{operation}: {code}: {error.get('Message', '')}".rstrip(": ")
        if code in THROTTLE_CODES or status >= 500:
            return ThrottledError(message)
        if code in NOT_FOUND_CODES:
            return EcsNotFoundError(message, code, operation)
        return EcsError(message, code, operation)
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
        return TransientError(f"{operation}: {exc}")
    return EcsError(f"{operation}: {exc}", operation=operation)


@aws_api
def call(client, operation: str, **params: Any) -> dict:
    """One AWS API call through the throttling policy, errors turned into ours."""
    try:
        return getattr(client, operation)(**params)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, operation) from exc


@dataclass(frozen=True)
class EcsDeployment:
    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    rollout_state: str | None  # IN_PROGRESS | COMPLETED | FAILED; None without a circuit breaker
    reason: str
    failed_tasks: int
    running: int
    desired: int

    @property
    def has_failed(self) -> bool:
        return self.rollout_state == "FAILED"

    @property
    def completed(self) -> bool:
        return self.rollout_state == "COMPLETED"

    @classmethod
    def parse(cls, raw: dict) -> EcsDeployment:
        return cls(
            id=raw["id"], status=raw.get("status", ""), task_definition=raw.get("taskDefinition", ""),
            rollout_state=raw.get("rolloutState"), reason=raw.get("rolloutStateReason", ""),
            failed_tasks=raw.get("failedTasks", 0), running=raw.get("runningCount", 0),
            desired=raw.get("desiredCount", 0),
        )


@dataclass(frozen=True)
class EcsTaskSet:
    """One task set of a service on the EXTERNAL controller: one revision's tasks."""

    id: str
    arn: str
    task_definition: str
    status: str  # PRIMARY | ACTIVE | DRAINING
    stability: str  # STEADY_STATE | STABILIZING
    scale: float  # percent of the service's desired count
    running: int
    desired: int  # computedDesiredCount; moto leaves it out

    @property
    def steady(self) -> bool:
        return self.stability == "STEADY_STATE" and self.running >= self.desired

    @classmethod
    def parse(cls, raw: dict) -> EcsTaskSet:
        # scale's unit is PERCENT, the only one AWS has.
        scale = raw.get("scale") or {}
        desired = raw.get("computedDesiredCount", 0)
        return cls(
            id=raw["id"], arn=raw["taskSetArn"], task_definition=raw.get("taskDefinition", ""),
            status=raw.get("status", ""), stability=raw.get("stabilityStatus", ""),
            scale=float(scale.get("value", 100.0)),
            running=raw.get("runningCount", 0), desired=desired,
        )


@dataclass(frozen=True)
class EcsService:
    arn: str
    name: str
    task_definition: str
    controller: str  # ECS | CODE_DEPLOY | EXTERNAL
    running: int
    desired: int
    deployments: tuple[EcsDeployment, ...]
    target_groups: tuple[str, ...]
    container_ports: tuple[tuple[str, int], ...] = ()  # (container, port) behind the load balancer
    task_sets: tuple[EcsTaskSet, ...] = ()  # EXTERNAL controller only

    @property
    def primary(self) -> EcsDeployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    @property
    def primary_task_set(self) -> EcsTaskSet | None:
        return next((t for t in self.task_sets if t.status == "PRIMARY"), None)

    def deployment(self, deployment_id: str) -> EcsDeployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    @classmethod
    def parse(cls, raw: dict) -> EcsService:
        balancers = raw.get("loadBalancers", [])
        return cls(
            arn=raw["serviceArn"], name=raw["serviceName"], task_definition=raw.get("taskDefinition", ""),
            controller=raw.get("deploymentController", {}).get("type", "ECS"),
            running=raw.get("runningCount", 0), desired=raw.get("desiredCount", 0),
            deployments=tuple(EcsDeployment.parse(d) for d in raw.get("deployments", [])),
            target_groups=tuple(lb["targetGroupArn"] for lb in balancers if lb.get("targetGroupArn")),
            container_ports=tuple((lb["containerName"], lb["containerPort"]) for lb in balancers
                                  if lb.get("containerName") and lb.get("containerPort")),
            task_sets=tuple(EcsTaskSet.parse(t) for t in raw.get("taskSets", [])),
        )


def task_set_placement(source: dict) -> dict:
    """create_task_set arguments copied from a task set or service description: where and
    behind what the new set's tasks run."""
    placement = {key: source[key] for key in TASK_SET_PLACEMENT if source.get(key)}
    if placement.get("capacityProviderStrategy"):
        placement.pop("launchType", None)  # AWS takes one or the other
    if placement.get("launchType") != "FARGATE":
        placement.pop("platformVersion", None)  # Fargate only
    return placement


def settled(service: EcsService, deployment: EcsDeployment) -> bool:
    """Whether a deployment is done: COMPLETED, or, for a deployment with no rollout state
    (no circuit breaker), alone and at its desired count."""
    if deployment.rollout_state is not None:
        return deployment.completed
    return len(service.deployments) == 1 and deployment.running == deployment.desired


@dataclass(frozen=True)
class Probe:
    """One look at the bake: what is wrong now, if anything, and whether it is final."""

    problem: str = ""
    final: bool = False  # an alarm going into ALARM ends the bake at once


class ImagePusher(Protocol):
    """Makes a locally built image available to ECS (ECR) and returns the reference to run."""

    def push(self, image: str, repository: str, tag: str) -> str: ...


def image_tag(image: str) -> str:
    _, sep, tag = image.rpartition(":")
    return tag if sep and "/" not in tag else ""


class EcsTarget:
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

    def task_definition(self, arn: str) -> dict:
        return call(self.ecs, "describe_task_definition", taskDefinition=arn)["taskDefinition"]

    def container_image(self, task_definition: dict) -> str:
        for container in task_definition.get("containerDefinitions", []):
            if container["name"] == self.settings.container:
                return container["image"]
        raise EcsError(f"task definition {task_definition.get('taskDefinitionArn')} has no container "
                       f"named {self.settings.container!r}", operation="describe_task_definition")

    def revision_with_image(self, family: str, image: str) -> str | None:
        """The newest active revision of `family` whose container runs `image`."""
        resp = call(self.ecs, "list_task_definitions", familyPrefix=family, status="ACTIVE", sort="DESC",
                    maxResults=REVISION_SEARCH_LIMIT)
        for arn in resp.get("taskDefinitionArns", []):
            # familyPrefix is a prefix: `web` also lists `web-worker`.
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != family:
                continue
            if self.container_image(self.task_definition(arn)) == image:
                return arn
        return None

    # -- Target ----------------------------------------------------------------------------

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

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        """Bake: probe the alarms and the target group every `interval` for `bake` seconds.

        An alarm that goes into ALARM during the bake ends it at once. An alarm already in ALARM
        when the bake starts is most often the bad release's we are rolling back from (a metric
        alarm needs a period or more to see the 5xx stop), so it is given the bake to clear and
        fails the bake only if it is still in ALARM at the end; once seen clear, it is fresh again."""
        health = plan.health
        deadline = time.monotonic() + health.bake
        target_group = self._target_group()
        probes = failed = streak = 0
        last = ""
        lingering: set[str] | None = None  # alarms in ALARM at the first probe and not yet seen clear
        while True:
            probes += 1
            firing = self._alarms_firing()
            if lingering is None:
                lingering = {name for name, why in firing.items() if not why.endswith(MISSING_ALARM)}
                if lingering:
                    on_event(f"bake probe 1: {', '.join(sorted(lingering))} already in ALARM as the bake starts; "
                             f"waiting up to {health.bake:g}s for it to clear", step="ecs_alarm_lingering")
            lingering &= set(firing)
            fresh = {name: why for name, why in firing.items() if name not in lingering}
            probe = Probe(next(iter(fresh.values())), final=True) if fresh else self._probe(target_group)
            if probe.problem:
                failed += 1
                streak += 1
                last = probe.problem
                on_event(f"bake probe {probes}: {probe.problem}", step="ecs_probe_failed")
                if probe.final or streak >= health.failures:
                    return VerifyReport(False, probes, failed, 0, 0, reason=probe.problem, last_output=last)
            else:
                streak = 0
            if time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, min(health.interval, deadline - time.monotonic())))
        if lingering:
            name = sorted(lingering)[0]
            reason = (f"{firing[name]}; it was already in ALARM when the bake started "
                      f"and did not clear in {health.bake:g}s")
            return VerifyReport(False, probes, failed, 0, 0, reason=reason, last_output=reason)
        on_event(f"baked {health.bake:g}s: {probes} probes, {failed} failed", step="ecs_baked")
        return VerifyReport(True, probes, failed, 0, 0, last_output=last)

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

    def task_sets(self) -> list[EcsTaskSet]:
        resp = call(self.ecs, "describe_task_sets", cluster=self.settings.cluster, service=self.settings.service)
        return [EcsTaskSet.parse(t) for t in resp.get("taskSets", [])]

    def task_set_image(self, task_set: EcsTaskSet) -> str:
        return self.container_image(self.task_definition(task_set.task_definition))

    def _roll_out_task_sets(self, raw: dict, service: EcsService, image: str, on_event: EventSink) -> None:
        primary = service.primary_task_set
        if primary is not None and self.task_set_image(primary) == image:
            on_event(f"ECS service {service.name} already serves {image} from task set {primary.id}",
                     step="ecs_already_current", task_set=primary.id, task_definition=primary.task_definition)
            self._follow_task_set(primary.id, on_event)
            # A switch cut short before the previous set was scaled down leaves it serving too.
            self._scale_down_others(primary, service.task_sets, on_event)
            return
        kept = next((t for t in service.task_sets
                     if t.status != "PRIMARY" and self.task_set_image(t) == image), None)
        if kept is not None:
            # Rolling back: the previous release's set is still there, only scaled down.
            on_event(f"re-using task set {kept.id} ({kept.task_definition}) for {image}", step="ecs_task_set_reused",
                     task_set=kept.id, task_definition=kept.task_definition)
            if kept.scale < FULL_PERCENT:
                self._scale(kept, FULL_SCALE)
            incoming = kept
        else:
            incoming = self._create_task_set(raw, service, image, on_event)
        self._follow_task_set(incoming.id, on_event)
        call(self.ecs, "update_service_primary_task_set", cluster=self.settings.cluster,
             service=self.settings.service, primaryTaskSet=incoming.arn)
        on_event(f"task set {incoming.id} is primary: ECS service {service.name} serves {image}",
                 step="ecs_task_set_primary", task_set=incoming.id, task_definition=incoming.task_definition)
        self._scale_down_others(incoming, service.task_sets, on_event)

    def _create_task_set(self, raw: dict, service: EcsService, image: str, on_event: EventSink) -> EcsTaskSet:
        primary = service.primary_task_set
        current_arn = primary.task_definition if primary is not None else service.task_definition
        if not current_arn:
            raise EcsError(f"ECS service {service.name} has no primary task set and no task definition to copy "
                           "for a new release", operation="roll_out")
        current = self.task_definition(current_arn)
        arn = self.revision_with_image(current["family"], image)
        if arn:
            on_event(f"re-using task definition {arn} for {image}", step="ecs_task_definition_reused",
                     task_definition=arn)
        else:
            arn = self._register(current, image)
            on_event(f"registered task definition {arn} for {image}", step="ecs_task_definition_registered",
                     task_definition=arn)
        source = next((t for t in raw.get("taskSets", []) if t.get("status") == "PRIMARY"), raw)
        created = EcsTaskSet.parse(call(
            self.ecs, "create_task_set", cluster=self.settings.cluster, service=self.settings.service,
            taskDefinition=arn, scale=FULL_SCALE, **task_set_placement(source))["taskSet"])
        on_event(f"task set {created.id} created for {arn} at 100%", step="ecs_task_set_created",
                 task_set=created.id, task_definition=arn)
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

    def _publish(self, plan: RolloutPlan, on_event: EventSink) -> str:
        if self.builder is None:
            return plan.image
        repository = self.settings.repository or self.settings.service
        image = self.builder.push(plan.image, repository, plan.sha)
        on_event(f"image {image} is in the registry ECS pulls from", step="ecr_pushed", image=image)
        return image

    def _register(self, current: dict, image: str) -> str:
        definition = {k: v for k, v in current.items() if k not in READ_ONLY_TASK_FIELDS}
        definition["containerDefinitions"] = [
            {**c, "image": image} if c["name"] == self.settings.container else c
            for c in current["containerDefinitions"]
        ]
        return call(self.ecs, "register_task_definition", **definition)["taskDefinition"]["taskDefinitionArn"]

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

    def _target_group(self) -> str | None:
        if self.settings.target_group_arn:
            return self.settings.target_group_arn
        groups = self.service().target_groups
        return groups[0] if groups else None

    def _probe(self, target_group: str | None) -> Probe:
        """The target group's health (the alarms are looked at by `verify`)."""
        if target_group is None:
            return Probe()
        return Probe(self._targets_unhealthy(target_group))

    def _alarms_firing(self) -> dict[str, str]:
        """The configured alarms in ALARM, each with what a person should read; an alarm named
        in the settings that does not exist counts as firing."""
        names = self.settings.alarms
        if not names:
            return {}
        resp = call(self.cloudwatch, "describe_alarms", AlarmNames=names,
                    AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        alarms = resp.get("MetricAlarms", []) + resp.get("CompositeAlarms", [])
        firing = {
            a["AlarmName"]: f"CloudWatch alarm {a['AlarmName']} is in ALARM: {a.get('StateReason', '')}".rstrip(": ")
            for a in alarms if a.get("StateValue") == "ALARM"
        }
        # Deploying unwatched is worse than rolling back: the name in deploy.yml is wrong.
        for name in sorted(set(names) - {a["AlarmName"] for a in alarms}):
            firing[name] = f"CloudWatch alarm {name}{MISSING_ALARM}"
        return firing

    def _targets_unhealthy(self, target_group: str) -> str:
        resp = call(self.elbv2, "describe_target_health", TargetGroupArn=target_group)
        serving = [t for t in resp.get("TargetHealthDescriptions", [])
                   if t["TargetHealth"]["State"] not in TARGET_STATES_LEAVING]
        if not serving:
            return f"no targets registered in {target_group.rsplit(':', 1)[-1]}"
        bad = [t for t in serving if t["TargetHealth"]["State"] != "healthy"]
        if not bad:
            return ""
        t = bad[0]
        health = t["TargetHealth"]
        return (f"{len(bad)} of {len(serving)} targets not healthy; {t['Target']['Id']}:{t['Target'].get('Port', '')} "
                f"is {health['State']} ({health.get('Reason', '')}: {health.get('Description', '')})")

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
