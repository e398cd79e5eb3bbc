"""What ECS answers, read into plain values: a service, its deployments and task sets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.errors import RolloutError

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


class TaskSetError(RolloutError):
    """A blue-green task set did not become steady, or vanished while we waited for it."""


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
    created_at: datetime | None = None

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
            created_at=raw.get("createdAt") if isinstance(raw.get("createdAt"), datetime) else None,
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
    target_group: str = ""  # the target group its tasks register in

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
            target_group=next((lb["targetGroupArn"] for lb in raw.get("loadBalancers", []) if lb.get("targetGroupArn")),
                              ""),
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

