"""A stateful Amazon ECS (the stand-in of `mainline demo --story ecs`, and the tests' fake in
tests/fakes/ecs.py) for the rollout sequences moto hides: every deployment has its own id
and task definition, and each look at the service (DescribeServices) moves the deployments one
tick along the outcome the test chose: healthy, tasks that crash, an image that cannot be
pulled, a secret that cannot be read, tasks that cannot be placed, or stuck. A failed
deployment is rolled back the way the circuit breaker does (a new deployment of the previous
revision), and stopped tasks keep ECS's `stoppedReason`, `stopCode` and exit codes.

Checked against botocore's service model as Stubber checks: each request against the
operation's input shape and each answer against its output shape (botocore.validate), so a
field ECS does not have, or a missing required one, fails the test. Field names, enum values
and the wording of reasons and events follow the Amazon ECS API Reference."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

ACCOUNT = "123456789012"
REGION = "us-east-1"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
READ_ONLY = ("taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt",
             "registeredBy")

# What the stopped tasks of each failing outcome say, as ECS words it.
STOPPED = {
    "crash": ("EssentialContainerExited", "Essential container in task exited", 1, ""),
    "pull-error": ("TaskFailedToStart", "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                   "failed to resolve ref {image}: not found", None, ""),
    "secret": ("TaskFailedToStart", "ResourceInitializationError: unable to pull secrets or registry auth: "
               "execution resource retrieval failed: unable to retrieve secret from asm: AccessDeniedException",
               None, ""),
}
PLACEMENT_EVENT = ("(service {service}) was unable to place a task because no container instance met all of its "
                   "requirements. The closest matching container-instance has insufficient memory available.")


@dataclass
class Deployment:
    id: str
    task_definition: str
    outcome: str  # healthy | crash | pull-error | secret | placement | stuck
    status: str = "PRIMARY"
    state: str = "IN_PROGRESS"
    running: int = 0
    failed: int = 0
    reason: str = ""
    created: datetime = T0
    ticks: int = 0

    def shape(self, desired: int) -> dict:
        return {
            "id": self.id, "status": self.status, "taskDefinition": self.task_definition,
            "desiredCount": desired, "pendingCount": max(0, desired - self.running) if self.state == "IN_PROGRESS"
            else 0, "runningCount": self.running, "failedTasks": self.failed, "createdAt": self.created,
            "updatedAt": self.created + timedelta(seconds=self.ticks), "launchType": "FARGATE",
            "rolloutState": self.state,
            "rolloutStateReason": self.reason or f"ECS deployment {self.id} in progress.",
        }


@dataclass
class Service:
    name: str
    arn: str
    task_definition: str
    desired: int
    config: dict
    load_balancers: list[dict] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    tags: list[dict] = field(default_factory=list)


class EcsStandIn:
    """Behaves as a boto3 ECS client for the calls the ECS target makes (and, behind
    sandbox/ecs_server.py, as ECS's JSON API)."""

    def __init__(self, region: str = REGION):
        self._model = botocore.session.get_session().get_service_model("ecs")
        self._operations = {xform_name(name): name for name in self._model.operation_names}
        self.meta = SimpleNamespace(service_model=self._model, region_name=region)
        self.region = region
        self.definitions: dict[str, dict] = {}
        self.definition_tags: dict[str, list[dict]] = {}
        self.services: dict[str, Service] = {}
        self.stopped: list[dict] = []
        self.calls: list[tuple[str, dict]] = []
        self.next_outcome = "healthy"  # the outcome of the next deployment started
        self.unpullable: set[str] = set()  # images no task can pull (a deployment of one: pull-error)
        self.pull_refused: Callable[[str], bool] = lambda image: image in self.unpullable
        self.tasks_per_tick = 1  # how many tasks start (or fail) at each look
        self.on_tick: Callable[[EcsStandIn], None] | None = None
        self.on_completed: Callable[[Service, Deployment], None] | None = None
        self.now = T0
        self._ids = itertools.count(1)

    # -- the client surface ------------------------------------------------------------------

    def __getattr__(self, name: str) -> Callable[..., dict]:
        operation = self._operations.get(name)
        if operation is None or not hasattr(self, f"_{name}"):
            raise AttributeError(name)
        handler = getattr(self, f"_{name}")
        model = self._model.operation_model(operation)

        def call(**params: Any) -> dict:
            validate_parameters(params, model.input_shape)
            self.calls.append((name, copy.deepcopy(params)))
            answer = handler(**params)
            validate_parameters(answer, model.output_shape)
            return copy.deepcopy(answer)

        return call

    def error(self, code: str, message: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": message},
                            "ResponseMetadata": {"HTTPStatusCode": 400}}, "ecs")

    # -- set-up helpers, as the team's Terraform would ----------------------------------------

    def register(self, family: str, image: str, container: str = "web", memory: str = "512",
                 tags: list[dict] | None = None) -> str:
        return self._register_task_definition(
            family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory=memory,
            containerDefinitions=[{"name": container, "image": image, "essential": True,
                                   "portMappings": [{"containerPort": 8080, "protocol": "tcp"}]}],
            tags=tags or [])["taskDefinition"]["taskDefinitionArn"]

    def create_service(self, name: str, task_definition: str, desired: int = 2, config: dict | None = None,
                       load_balancers: list[dict] | None = None) -> Service:
        arn = f"arn:aws:ecs:{self.region}:{ACCOUNT}:service/prod/{name}"
        service = Service(name, arn, task_definition, desired, config if config is not None else {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200, "minimumHealthyPercent": 100}, load_balancers or [])
        service.deployments.append(Deployment(self._deployment_id(), task_definition, "healthy", state="COMPLETED",
                                              running=desired, reason="ECS deployment completed."))
        self.services[name] = service
        return service

    def event(self, service: str, message: str) -> None:
        self.services[service].events.insert(0, {"id": f"ev-{next(self._ids)}", "createdAt": self.now,
                                                 "message": message})

    def image_of(self, arn: str, container: str = "web") -> str:
        return next(c["image"] for c in self.definitions[arn]["containerDefinitions"] if c["name"] == container)

    # -- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        self.now += timedelta(seconds=15)
        if self.on_tick is not None:
            self.on_tick(self)
        for service in self.services.values():
            for deployment in list(service.deployments):
                # A deployment another one replaced (ACTIVE) stops moving; its tasks drain.
                if deployment.state == "IN_PROGRESS" and deployment.status == "PRIMARY":
                    self._advance(service, deployment)

    def _advance(self, service: Service, d: Deployment) -> None:
        d.ticks += 1
        if d.outcome == "healthy":
            d.running = min(service.desired, d.running + self.tasks_per_tick)
            if d.running >= service.desired:
                d.state, d.reason = "COMPLETED", f"ECS deployment {d.id} completed."
                service.deployments = [d]
                d.status = "PRIMARY"
                if self.on_completed is not None:
                    self.on_completed(service, d)
        elif d.outcome in STOPPED:
            for _ in range(min(self.tasks_per_tick, 3 - d.failed)):
                d.failed += 1
                self._stop_task(service, d)
            if d.failed >= 3:
                self._break(service, d)
        elif d.outcome == "placement" and d.ticks == 1:
            self.event(service.name, PLACEMENT_EVENT.format(service=service.name))

    def _stop_task(self, service: Service, d: Deployment) -> None:
        stop_code, reason, exit_code, _ = STOPPED[d.outcome]
        image = self.image_of(d.task_definition) if d.task_definition in self.definitions else ""
        task_id = f"{next(self._ids):032x}"
        container: dict[str, Any] = {"name": "web", "image": image, "lastStatus": "STOPPED"}
        if exit_code is not None:
            container["exitCode"] = exit_code
        else:
            container["reason"] = reason.format(image=image)
        self.stopped.insert(0, {
            "taskArn": f"arn:aws:ecs:{self.region}:{ACCOUNT}:task/prod/{task_id}",
            "taskDefinitionArn": d.task_definition, "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
            "group": f"service:{service.name}", "stopCode": stop_code,
            "stoppedReason": reason.format(image=image), "containers": [container],
            "stoppedAt": self.now,
        })

    def _break(self, service: Service, d: Deployment) -> None:
        """The circuit breaker: this deployment FAILED, a new one of the previous revision."""
        d.state = "FAILED"
        d.status = "ACTIVE"
        d.reason = "ECS deployment circuit breaker: tasks failed to start."
        self.event(service.name, f"(service {service.name}) deployment {d.id} deployment failed: tasks failed to "
                                 "start.")
        previous = next((x for x in service.deployments if x is not d and x.task_definition != d.task_definition),
                        None)
        if previous is not None and service.config.get("deploymentCircuitBreaker", {}).get("rollback"):
            back = Deployment(self._deployment_id(), previous.task_definition, "healthy", running=previous.running,
                              created=self.now)
            service.deployments = [back, d]
            service.task_definition = previous.task_definition
            self.event(service.name, f"(service {service.name}) rolling back to deployment {back.id}.")

    def _deployment_id(self) -> str:
        return f"ecs-svc/{9000000000000000000 + next(self._ids)}"

    def start_deployment(self, service: str, task_definition: str, outcome: str | None = None) -> Deployment:
        """A deployment as UpdateService starts one (another deploy tool may call this mid-test)."""
        svc = self.services[service]
        for old in svc.deployments:
            old.status = "ACTIVE"
        if outcome is None:
            outcome = "pull-error" if self.pull_refused(self.image_of(task_definition)) else self.next_outcome
        d = Deployment(self._deployment_id(), task_definition, outcome, created=self.now)
        svc.deployments.insert(0, d)
        svc.deployments = [x for x in svc.deployments if x is d or x.running > 0 or x.state == "FAILED"]
        svc.task_definition = task_definition
        self.event(service, f"(service {service}) has started 1 tasks: (task {d.id[-8:]}).")
        return d

    # -- operations --------------------------------------------------------------------------

    def _service_shape(self, s: Service) -> dict:
        return {
            "serviceArn": s.arn, "serviceName": s.name,
            "clusterArn": f"arn:aws:ecs:{self.region}:{ACCOUNT}:cluster/prod",
            "loadBalancers": copy.deepcopy(s.load_balancers), "status": "ACTIVE", "desiredCount": s.desired,
            "runningCount": sum(d.running for d in s.deployments), "pendingCount": 0, "launchType": "FARGATE",
            "taskDefinition": s.task_definition, "deploymentConfiguration": copy.deepcopy(s.config),
            "deployments": [d.shape(s.desired) for d in s.deployments], "events": copy.deepcopy(s.events[:100]),
            "deploymentController": {"type": "ECS"}, "schedulingStrategy": "REPLICA",
        }

    def _find(self, name: str) -> Service:
        service = self.services.get(name.rsplit("/", 1)[-1])
        if service is None:
            raise self.error("ServiceNotFoundException", "Service not found.")
        return service

    def _describe_services(self, cluster: str, services: list[str], **_: Any) -> dict:
        self.tick()
        return {"services": [self._service_shape(self._find(name)) for name in services], "failures": []}

    def _update_service(self, cluster: str, service: str, taskDefinition: str | None = None,
                        deploymentConfiguration: dict | None = None, forceNewDeployment: bool = False,
                        **_: Any) -> dict:
        svc = self._find(service)
        if deploymentConfiguration is not None:
            svc.config = copy.deepcopy(deploymentConfiguration)
        if taskDefinition is not None and taskDefinition not in self.definitions:
            raise self.error("ClientException", "TaskDefinition not found.")
        if taskDefinition not in (None, svc.task_definition) or forceNewDeployment:
            self.start_deployment(svc.name, taskDefinition or svc.task_definition)
        return {"service": self._service_shape(svc)}

    def _register_task_definition(self, family: str, containerDefinitions: list[dict], tags: list[dict] | None = None,
                                  **rest: Any) -> dict:
        revision = 1 + sum(1 for d in self.definitions.values() if d["family"] == family)
        arn = f"arn:aws:ecs:{self.region}:{ACCOUNT}:task-definition/{family}:{revision}"
        definition = {"taskDefinitionArn": arn, "family": family, "revision": revision, "status": "ACTIVE",
                      "containerDefinitions": copy.deepcopy(containerDefinitions), **copy.deepcopy(rest),
                      "compatibilities": ["EC2", "FARGATE"], "registeredAt": self.now}
        self.definitions[arn] = definition
        self.definition_tags[arn] = copy.deepcopy(tags or [])
        return {"taskDefinition": definition, "tags": copy.deepcopy(tags or [])}

    def _describe_task_definition(self, taskDefinition: str, include: list[str] | None = None) -> dict:
        if taskDefinition not in self.definitions:
            raise self.error("ClientException", "Unable to describe task definition.")
        answer: dict[str, Any] = {"taskDefinition": self.definitions[taskDefinition]}
        if include and "TAGS" in include:
            answer["tags"] = self.definition_tags.get(taskDefinition, [])
        return answer

    def _list_task_definitions(self, familyPrefix: str = "", status: str = "ACTIVE", sort: str = "ASC",
                               maxResults: int = 100, **_: Any) -> dict:
        arns = [a for a, d in self.definitions.items() if d["family"].startswith(familyPrefix)]
        arns.sort(key=lambda a: self.definitions[a]["revision"], reverse=sort == "DESC")
        return {"taskDefinitionArns": arns[:maxResults]}

    def _list_tasks(self, cluster: str, serviceName: str = "", desiredStatus: str = "RUNNING", **_: Any) -> dict:
        if desiredStatus != "STOPPED":
            return {"taskArns": []}
        return {"taskArns": [t["taskArn"] for t in self.stopped if t["group"] == f"service:{serviceName}"][:100]}

    def _describe_tasks(self, cluster: str, tasks: list[str], **_: Any) -> dict:
        return {"tasks": [t for t in self.stopped if t["taskArn"] in tasks], "failures": []}

    def _list_tags_for_resource(self, resourceArn: str) -> dict:
        service = next((s for s in self.services.values() if s.arn == resourceArn), None)
        return {"tags": copy.deepcopy(service.tags) if service else []}

    def _tag_resource(self, resourceArn: str, tags: list[dict]) -> dict:
        service = next(s for s in self.services.values() if s.arn == resourceArn)
        keys = {t["key"] for t in tags}
        service.tags = [t for t in service.tags if t["key"] not in keys] + copy.deepcopy(tags)
        return {}

    def _untag_resource(self, resourceArn: str, tagKeys: list[str]) -> dict:
        service = next(s for s in self.services.values() if s.arn == resourceArn)
        service.tags = [t for t in service.tags if t["key"] not in tagKeys]
        return {}
