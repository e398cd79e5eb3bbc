"""The boto3 session Mainline acts with: the process's own credentials, or a role it assumes
(`ecs.assume_role`, with the external id the role's trust policy asks for), renewed before the
temporary credentials expire."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.credentials import RefreshableCredentials
from botocore.session import get_session

from bot.infra.aws.client import aws_client, call

SESSION_NAME = "mainline"
ROLE_SECONDS = 3600


def assumed_session(region: str, role_arn: str, external_id: str | None = None,
                    base: boto3.Session | None = None, sts: Any = None) -> boto3.Session:
    """A session whose credentials come from sts:AssumeRole and refresh themselves."""
    sts = sts or aws_client(base, "sts", region)

    def fetch() -> dict:
        params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME,
                                  "DurationSeconds": ROLE_SECONDS}
        if external_id:
            params["ExternalId"] = external_id
        creds = call(sts, "assume_role", **params)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    credentials = RefreshableCredentials.create_from_metadata(metadata=fetch(), refresh_using=fetch,
                                                              method="sts-assume-role")
    botocore_session = get_session()
    botocore_session._credentials = credentials  # boto3's documented way to hand a session refreshable keys
    return boto3.Session(botocore_session=botocore_session, region_name=region)


def session_for(region: str, assume_role: Any = None) -> boto3.Session:
    """`assume_role` is bot.config_ecs.AssumeRole or None."""
    if assume_role is None:
        return boto3.Session(region_name=region)
    return assumed_session(region, assume_role.arn, assume_role.external_id)
