"""Task definitions: read one, find the container's image, find a revision already running an
image, register a new revision."""

from __future__ import annotations

from typing import Any

from bot.config import EcsSettings
from bot.infra.aws.client import call
from bot.infra.aws.errors import EcsError
from bot.infra.targets.ecs.model import READ_ONLY_TASK_FIELDS, REVISION_SEARCH_LIMIT


class TaskDefinitions:
    """The task-definition calls of an ECS target (a mixin of EcsTarget)."""

    settings: EcsSettings
    ecs: Any

    def task_definition(self, arn: str) -> dict:
        return call(self.ecs, "describe_task_definition", taskDefinition=arn)["taskDefinition"]

    def task_definition_with_tags(self, arn: str) -> tuple[dict, list[dict]]:
        resp = call(self.ecs, "describe_task_definition", taskDefinition=arn, include=["TAGS"])
        return resp["taskDefinition"], resp.get("tags") or []

    def with_image(self, current: dict, image: str) -> dict:
        """`current` as register_task_definition takes it, with only our container's image changed."""
        definition = {k: v for k, v in current.items() if k not in READ_ONLY_TASK_FIELDS}
        definition["containerDefinitions"] = [
            {**c, "image": image} if c["name"] == self.settings.container else c
            for c in current["containerDefinitions"]
        ]
        return definition

    def revision_like(self, current: dict, image: str) -> str | None:
        """A registered revision that is `current` with `image` and nothing else changed (one
        registered before a crash), so a re-run does not register another."""
        wanted = self.with_image(current, image)
        resp = call(self.ecs, "list_task_definitions", familyPrefix=current["family"], status="ACTIVE", sort="DESC",
                    maxResults=REVISION_SEARCH_LIMIT)
        for arn in resp.get("taskDefinitionArns", []):
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != current["family"]:
                continue
            candidate = self.task_definition(arn)
            if self.container_image(candidate) == image and self.with_image(candidate, image) == wanted:
                return arn
        return None

    def register_like(self, current: dict, tags: list[dict], image: str) -> str:
        """Register `current` with `image`: memory, CPU, roles, environment and tags stay as they are."""
        definition = self.with_image(current, image)
        if tags:
            definition["tags"] = tags
        return call(self.ecs, "register_task_definition", **definition)["taskDefinition"]["taskDefinitionArn"]

    def container_image(self, task_definition: dict) -> str:
        for container in task_definition.get("containerDefinitions", []):
            if container["name"] == self.settings.container:
                return container["image"]
        raise EcsError(f"task definition {task_definition.get('taskDefinitionArn')} has no container "
                       f"named {self.settings.container!r}", operation="describe_task_definition")

    # -- Target ----------------------------------------------------------------------------
