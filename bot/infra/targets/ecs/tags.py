"""What Mainline keeps on the ECS service itself (as tags), so a restarted worker, or another
worker running the next step, knows it: the rollout in flight and the alarms that were already
in ALARM before it. Tag values keep to ECS's characters (letters, digits, spaces, _.:/=+-@)."""

from __future__ import annotations

import contextlib
from typing import Any

from bot.infra.aws.client import call
from bot.infra.aws.errors import EcsError

ROLLOUT_TAG = "mainline:rollout"  # sha deployment-id task-definition-arn
ALARMS_TAG = "mainline:alarms-before"  # sha and the indexes (in ecs.alarms) of those in ALARM
MAX_VALUE = 256


def read_tag(ecs: Any, arn: str, key: str) -> str:
    try:
        tags = call(ecs, "list_tags_for_resource", resourceArn=arn).get("tags", [])
    except EcsError:
        return ""
    return next((t.get("value", "") for t in tags if t.get("key") == key), "")


def write_tag(ecs: Any, arn: str, key: str, value: str) -> None:
    # Best effort: without it a restarted worker knows less, and says so by acting as before.
    with contextlib.suppress(EcsError):
        call(ecs, "tag_resource", resourceArn=arn, tags=[{"key": key, "value": value[:MAX_VALUE]}])


def drop_tag(ecs: Any, arn: str, key: str) -> None:
    with contextlib.suppress(EcsError):
        call(ecs, "untag_resource", resourceArn=arn, tagKeys=[key])


def alarms_value(sha: str, names: list[str], firing: set[str]) -> str:
    return " ".join([sha, *(str(i) for i, name in enumerate(names) if name in firing)])


def alarms_from(value: str, sha: str, names: list[str]) -> set[str] | None:
    """The alarms recorded in ALARM before `sha`'s deploy; None when nothing was recorded for it."""
    parts = value.split()
    if not parts or parts[0] != sha:
        return None
    return {names[int(i)] for i in parts[1:] if i.isdigit() and int(i) < len(names)}
