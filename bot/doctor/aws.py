"""The doctor's AWS checks: who Mainline is (STS), and whether IAM would allow each action of
deploy/iam-policy.json for that principal (`iam:SimulatePrincipalPolicy`, with the conditions the
policy's statements expect)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from bot.doctor.findings import Finding, fail, ok, skip

AREA = "aws"
POLICY = Path(__file__).with_name("iam-policy.json")  # a copy of deploy/iam-policy.json (a test keeps them equal)
ASSUMED = re.compile(r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d+):assumed-role/(?P<role>[\w+=,.@-]+)/[^/]+$")
FIX = "attach deploy/iam-policy.json to {principal} (docs/self-hosting.md#aws)"


def needed_actions() -> list[str]:
    policy = json.loads(POLICY.read_text())
    actions: list[str] = []
    for statement in policy["Statement"]:
        listed = statement["Action"]
        actions.extend([listed] if isinstance(listed, str) else listed)
    return sorted(set(actions))


def principal_arn(caller_arn: str) -> str:
    """The ARN IAM simulates for: an assumed role's session is its role."""
    match = ASSUMED.match(caller_arn)
    if match:
        return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"
    return caller_arn


def configured() -> bool:
    import boto3

    return any(os.environ.get(n) for n in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ROLE_ARN",
                                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) \
        or boto3.Session().get_credentials() is not None


def checks(wanted: bool | None) -> Iterator[Finding]:
    """`wanted`: True checks AWS, False skips it, None checks it when credentials are configured."""
    if wanted is False or (wanted is None and not configured()):
        yield skip(AREA, "identity", "no AWS credentials configured: the ecs target, ECR, SES and AWS secrets are off")
        return
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.Session()
    region = session.region_name or "us-east-1"
    try:
        caller = session.client("sts", region_name=region).get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        yield fail(AREA, "identity", f"sts:GetCallerIdentity failed: {exc}",
                   "give the worker AWS credentials (an instance or task role, or AWS_PROFILE)")
        return
    principal = principal_arn(caller["Arn"])
    yield ok(AREA, "identity", f"{caller['Arn']} in account {caller['Account']}")
    actions = needed_actions()
    context = [
        {"ContextKeyName": "iam:PassedToService", "ContextKeyValues": ["ecs-tasks.amazonaws.com"],
         "ContextKeyType": "string"},
        {"ContextKeyName": "kms:ViaService", "ContextKeyValues": [f"ssm.{region}.amazonaws.com"],
         "ContextKeyType": "string"},
    ]
    try:
        results = session.client("iam", region_name=region).simulate_principal_policy(
            PolicySourceArn=principal, ActionNames=actions, ContextEntries=context)["EvaluationResults"]
    except (BotoCoreError, ClientError) as exc:
        yield fail(AREA, "policy", f"iam:SimulatePrincipalPolicy on {principal} failed: {exc}",
                   f"allow iam:SimulatePrincipalPolicy on {principal} to let the doctor check, or check by hand")
        return
    denied = sorted(r["EvalActionName"] for r in results if r.get("EvalDecision") != "allowed")
    if denied:
        yield fail(AREA, "policy", f"{principal} is denied {len(denied)} of {len(actions)} actions: "
                   + ", ".join(denied), FIX.format(principal=principal))
    else:
        yield ok(AREA, "policy", f"{principal} is allowed all {len(actions)} actions of deploy/iam-policy.json")
