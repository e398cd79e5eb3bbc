"""boto3 clients that leave retrying to the `aws_api` policy, and `call`: one AWS API call with
botocore's errors turned into ours (throttling and 5xx transient, the rest named by service)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bot.errors import MainlineError, TransientError
from bot.infra.aws.errors import ThrottledError, family
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


def aws_client(session: boto3.Session | None, name: str, region: str):
    """A client that leaves retrying to us; boto3 reads AWS_ENDPOINT_URL itself."""
    return (session or boto3.Session()).client(name, region_name=region, config=BOTO_CONFIG)


def translate(exc: Exception, operation: str, service: str = "") -> MainlineError:
    """Our exception for a botocore one: throttling and 5xx are transient, the rest named."""
    refused, not_found = family(service)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = f"{operation}: {code}: {error.get('Message', '')}".rstrip(": ")
        if code in THROTTLE_CODES or status >= 500:
            return ThrottledError(message)
        if code in NOT_FOUND_CODES:
            return not_found(message, code, operation)
        return refused(message, code, operation)
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
        return TransientError(f"{operation}: {exc}")
    return refused(f"{operation}: {exc}", operation=operation)


def service_name(client) -> str:
    try:
        return client.meta.service_model.service_name
    except AttributeError:
        return ""


@aws_api
def call(client, operation: str, **params: Any) -> dict:
    """One AWS API call through the throttling policy, errors turned into ours."""
    try:
        return getattr(client, operation)(**params)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, operation, service_name(client)) from exc
