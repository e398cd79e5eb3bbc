"""The `ecs:` block of an environment in `.github/deploy.yml`: which ECS services one release
rolls out (one, or several rolled and rolled back together), how long a rollout may take, the
CloudWatch alarms that judge it, and the role Mainline assumes to do it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from bot.config_values import SHORT, TEXT, DurationRange, check_duration, parse_duration

ROLLOUT_TIMEOUT = DurationRange(10.0, 6 * 3600.0)
ROLE_ARN = Annotated[str, StringConstraints(max_length=2048,
                                            pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$")]
# STS: 2 to 1224 characters of letters, digits and +=,.@:/-
EXTERNAL_ID = Annotated[str, StringConstraints(min_length=2, max_length=1224, pattern=r"^[A-Za-z0-9_+=,.@:/-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AssumeRole(_Model):
    arn: ROLE_ARN
    external_id: EXTERNAL_ID | None = Field(default=None,
                                            description="the external id the role's trust policy asks for")


class EcsUnit(_Model):
    """One ECS service of a release, and the container in it that runs the release's image."""

    service: TEXT
    container: TEXT


class EcsSettings(_Model):
    cluster: TEXT
    service: TEXT = Field(default="", description="the ECS service (or list several under `services`)")
    container: TEXT = Field(default="", description="the container of `service` that runs the release's image")
    services: list[EcsUnit] = Field(default_factory=list, max_length=10,
                                    description="several services rolled out, and rolled back, together")
    region: SHORT = "us-east-1"
    alarms: list[TEXT] = Field(default_factory=list, max_length=20)
    target_group_arn: TEXT | None = None
    listener_arn: TEXT | None = Field(default=None, description="EXTERNAL blue-green: the production listener, "
                                                                "switched between the two target groups")
    alternate_target_group_arn: TEXT | None = Field(default=None, description="EXTERNAL blue-green: the second "
                                                                              "target group")
    repository: TEXT | None = None  # ECR repository name; defaults to the service name
    timeout: str | float = Field(default="30m", description="how long one rollout may take (10s to 6h)")
    assume_role: AssumeRole | None = None
    strategy: Literal["rolling", "blue-green", "canary"] | None = Field(
        default=None, description="ECS's own deployment strategy (ROLLING, BLUE_GREEN, CANARY); "
                                  "default: the environment's strategy")
    canary_percent: float = Field(default=10.0, ge=0.1, le=100.0, description="strategy: canary: the first step")

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        return check_duration(value, ROLLOUT_TIMEOUT)

    @model_validator(mode="after")
    def _one_way_to_name_services(self) -> EcsSettings:
        if self.services and (self.service or self.container):
            raise ValueError("name the services either with `service` and `container` or under `services`, not both")
        if not self.services and not (self.service and self.container):
            raise ValueError("`service` and `container` are required (or list several under `services`)")
        if bool(self.listener_arn) != bool(self.alternate_target_group_arn):
            raise ValueError("blue-green on two target groups needs both `listener_arn` and "
                             "`alternate_target_group_arn`")
        names = [u.service for u in self.services]
        if len(set(names)) != len(names):
            raise ValueError("`services` names a service twice")
        return self

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

    def units(self) -> list[EcsSettings]:
        """One settings per ECS service, each with its `service` and `container`."""
        if not self.services:
            return [self]
        return [self.model_copy(update={"service": u.service, "container": u.container, "services": []})
                for u in self.services]


def check_ecs(target: str, ecs: EcsSettings | None) -> None:
    """`target: ecs` needs an `ecs:` block, and an `ecs:` block is only read by `target: ecs`."""
    if target == "ecs" and ecs is None:
        raise ValueError("target: ecs needs an `ecs:` block (cluster, service, container)")
