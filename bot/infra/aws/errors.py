"""Errors of the AWS adapters: one base (AwsError) with the calls' error code and operation,
and one family per service, so ECR's and SES's failures are not ECS's."""

from __future__ import annotations

from bot.errors import MainlineError, NotFoundError, TransientError


class AwsError(MainlineError):
    """An AWS call was refused for a reason retrying will not fix."""

    def __init__(self, message: str, code: str = "", operation: str = ""):
        super().__init__(message)
        self.code = code
        self.operation = operation


class AwsNotFoundError(AwsError, NotFoundError):
    """What a call named does not exist."""


class ThrottledError(TransientError):
    """AWS throttled us or answered 5xx; the `aws_api` policy retries it."""


class EcsError(AwsError):
    """ECS, its load balancer or CloudWatch refused a call, or the service cannot do what was asked."""


class EcsNotFoundError(EcsError, AwsNotFoundError):
    """The cluster, service, target group or image named in the settings does not exist."""


class EcsControllerError(EcsError):
    """The service's deployment controller is one Mainline does not drive (CODE_DEPLOY)."""


class EcrError(AwsError):
    """ECR refused a login, a lookup or a push."""


class EcrNotFoundError(EcrError, AwsNotFoundError):
    """The ECR repository or image does not exist."""


class SesError(AwsError):
    """SES refused to send."""


# Which family a refused call belongs to, by the client's service name.
FAMILIES: dict[str, tuple[type[AwsError], type[AwsError]]] = {
    "ecs": (EcsError, EcsNotFoundError),
    "elbv2": (EcsError, EcsNotFoundError),
    "cloudwatch": (EcsError, EcsNotFoundError),
    "ecr": (EcrError, EcrNotFoundError),
    "ses": (SesError, SesError),
}


def family(service_name: str) -> tuple[type[AwsError], type[AwsError]]:
    """(refused, not found) error classes for a service's calls."""
    return FAMILIES.get(service_name, (AwsError, AwsNotFoundError))
