"""Why an ECS rollout did not finish, before anyone is blamed: the service's recent events and
the reasons its stopped tasks give (`stoppedReason`, each container's reason and exit code).

An image that cannot be pulled, a secret that cannot be read, tasks that cannot be placed and a
configuration ECS refuses are the infrastructure's failures, not the release's: the deploy ends
`failed`, production stays on the old release and nothing is reverted. Anything else (a container
that exits, failed health checks) is the release's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.infra.aws.client import call

# Evidence kept per rollout: enough to act on, bounded for events, comments and cards.
MAX_EVENTS = 5
MAX_STOPPED = 5
MAX_TEXT = 300

# (kind, pattern) in order: the first match names the failure.
INFRASTRUCTURE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("image-pull", re.compile(r"CannotPullContainerError|pull image|manifest (unknown|for .* not found)|"
                              r"failed to resolve ref|repository does not exist|ImagePull", re.I)),
    ("secret", re.compile(r"unable to (pull|retrieve) secrets?|secretsmanager|ssm:GetParameters|"
                          r"retrieve secret|AsmServiceError|SSM parameter", re.I)),
    ("placement", re.compile(r"unable to place a task|no container instance met|insufficient (memory|cpu)|"
                             r"capacity is unavailable|no capacity provider|RESOURCE:(MEMORY|CPU|PORTS)", re.I)),
    ("configuration", re.compile(r"CannotCreateContainerError|ResourceInitializationError|not authorized to "
                                 r"perform|AccessDenied|unable to assume (the )?role|InvalidParameter|"
                                 r"ClientException|log group does not exist", re.I)),
)
KIND_SAYS = {
    "image-pull": "the image could not be pulled",
    "secret": "a secret could not be read",
    "placement": "ECS could not place the tasks",
    "configuration": "ECS refused the service's configuration",
}


def clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class Diagnosis:
    """What the service said about one deployment: its events, its stopped tasks' reasons."""

    events: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    kind: str = ""  # an INFRASTRUCTURE_PATTERNS kind, or "" when it is the release's failure

    @property
    def infrastructure(self) -> bool:
        return bool(self.kind)

    @property
    def summary(self) -> str:
        """One line for the deploy's reason: what failed and the first piece of evidence."""
        first = (self.stopped or self.events or ("",))[0]
        head = KIND_SAYS.get(self.kind, "")
        return "; ".join(part for part in (head, first) if part)

    def data(self) -> dict[str, Any]:
        return {"service_events": list(self.events), "stopped_tasks": list(self.stopped), "kind": self.kind}


def classify(texts: list[str]) -> str:
    for kind, pattern in INFRASTRUCTURE_PATTERNS:
        if any(pattern.search(text) for text in texts):
            return kind
    return ""


def stopped_reason(task: dict) -> str:
    """`task 1f2e3d4c: CannotPullContainerError: ...; web exited 1: ...`."""
    parts = [task.get("stoppedReason", "")]
    for container in task.get("containers", []):
        why = container.get("reason", "")
        code = container.get("exitCode")
        if why or code not in (None, 0):
            parts.append(f"{container.get('name', '?')}" + (f" exited {code}" if code is not None else "")
                         + (f": {why}" if why else ""))
    task_id = task.get("taskArn", "").rsplit("/", 1)[-1][:12]
    stop_code = task.get("stopCode", "")
    head = f"task {task_id}" + (f" ({stop_code})" if stop_code else "")
    return clip(f"{head}: " + "; ".join(p for p in parts if p))


def diagnose(ecs: Any, cluster: str, raw_service: dict, task_definition: str,
             since: datetime | None = None) -> Diagnosis:
    """Read the service's events since `since` (the deployment's start) and the stopped tasks of
    `task_definition`, and classify them."""
    recent = [e for e in raw_service.get("events", [])
              if since is None or not isinstance(e.get("createdAt"), datetime) or e["createdAt"] >= since]
    events = tuple(clip(e.get("message", "")) for e in recent[:MAX_EVENTS])
    stopped: list[str] = []
    arns = call(ecs, "list_tasks", cluster=cluster, serviceName=raw_service["serviceName"],
                desiredStatus="STOPPED").get("taskArns", [])[:100]
    if arns:
        tasks = call(ecs, "describe_tasks", cluster=cluster, tasks=arns).get("tasks", [])
        ours = [t for t in tasks if not task_definition or t.get("taskDefinitionArn") == task_definition]
        stopped = [stopped_reason(t) for t in ours[:MAX_STOPPED]]
    return Diagnosis(events, tuple(stopped), classify([*stopped, *events]))
