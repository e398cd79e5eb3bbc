"""Target on AWS ECS: a new task-definition revision per image, a service update with the
deployment circuit breaker on, the rollout followed to steady or failed, and the bake judged by
the load balancer's target health and the configured CloudWatch alarms.

Rolling only. The ECS deployment controller replaces tasks behind the load balancer, each new
task registered and healthy before an old one drains (minimumHealthyPercent=100,
maximumPercent=200), so "blue-green" on such a service is served by the same rolling update.
Services on the CODE_DEPLOY or EXTERNAL controller are refused with an EcsError: their traffic
shift belongs to a CodeDeploy application and deployment group (or to task sets and a second
target group) that `.github/deploy.yml` does not name, and that moto cannot model to test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

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
    "ServiceNotFoundException", "ClusterNotFoundException", "TargetGroupNotFound",
    "RepositoryNotFoundException", "ImageNotFoundException", "ResourceNotFoundException",
})

# Fields describe_task_definition returns that register_task_definition refuses.
READ_ONLY_TASK_FIELDS = frozenset({
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
    "registeredAt", "registeredBy", "deregisteredAt",
})
# How many recent revisions to search for one already running an image.
REVISION_SEARCH_LIMIT = 50
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
    def parse(cls, raw: dict) -> "EcsDeployment":
        return cls(
            id=raw["id"], status=raw.get("status", ""), task_definition=raw.get("taskDefinition", ""),
            rollout_state=raw.get("rolloutState"), reason=raw.get("rolloutStateReason", ""),
            failed_tasks=raw.get("failedTasks", 0), running=raw.get("runningCount", 0),
            desired=raw.get("desiredCount", 0),
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

    @property
    def primary(self) -> EcsDeployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    def deployment(self, deployment_id: str) -> EcsDeployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    @classmethod
    def parse(cls, raw: dict) -> "EcsService":
        return cls(
            arn=raw["serviceArn"], name=raw["serviceName"], task_definition=raw.get("taskDefinition", ""),
            controller=raw.get("deploymentController", {}).get("type", "ECS"),
            running=raw.get("runningCount", 0), desired=raw.get("desiredCount", 0),
            deployments=tuple(EcsDeployment.parse(d) for d in raw.get("deployments", [])),
            target_groups=tuple(lb["targetGroupArn"] for lb in raw.get("loadBalancers", []) if lb.get("targetGroupArn")),
            container_ports=tuple((lb["containerName"], lb["containerPort"]) for lb in raw.get("loadBalancers", [])
                                  if lb.get("containerName") and lb.get("containerPort")),
        )


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
    name, sep, tag = image.rpartition(":")
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
        resp = call(self.ecs, "describe_services", cluster=self.settings.cluster, services=[self.settings.service])
        for raw in resp.get("services", []):
            if raw.get("status") != "INACTIVE":
                return EcsService.parse(raw)
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
        service = self.service()
        if service.controller != "ECS":
            raise EcsError(f"ECS service {service.name} uses the {service.controller} deployment controller; "
                           "Mainline rolls out through the ECS controller only (rolling with the circuit breaker)",
                           operation="roll_out")
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
            reason = f"{firing[name]}; it was already in ALARM when the bake started and did not clear in {health.bake:g}s"
            return VerifyReport(False, probes, failed, 0, 0, reason=reason, last_output=reason)
        on_event(f"baked {health.bake:g}s: {probes} probes, {failed} failed", step="ecs_baked")
        return VerifyReport(True, probes, failed, 0, 0, last_output=last)

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        # ECS drained and stopped the old tasks itself; the old revision stays registered
        # because rolling back re-uses it.
        on_event(f"ECS service {self.settings.service} runs {plan.image} only", step="ecs_finished")

    def discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
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
        container = next((c for c in task.get("containers", []) if c.get("name") == self.settings.container), {})
        image = container.get("image", "")
        ip = next((n.get("privateIpv4Address") for n in container.get("networkInterfaces", [])), None)
        port = next((b.get("hostPort") for b in container.get("networkBindings", [])), lb_port)
        status = task.get("healthStatus", "UNKNOWN")
        return Replica(
            name=task["taskArn"].rsplit("/", 1)[-1], image=image, sha=image_tag(image),
            address=f"{ip or ''}:{port or ''}".strip(":"),
            healthy=None if status == "UNKNOWN" else status == "HEALTHY",
        )
