"""deploy/iam-policy.json covers every AWS call Mainline makes, and nothing it does not.

The calls are found by reading bot/ with `ast`: `call(client, "operation", …)`, `client.operation(…)`
on a client bound from `aws_client(_, "service", _)` or `….client("service")`, and
`….client("service").operation(…)`; each operation is turned into its IAM action by botocore's own
service model (so a misspelt operation fails here too)."""

from __future__ import annotations

import ast
import fnmatch
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "deploy" / "iam-policy.json"
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "cloudwatch": "cloudwatch", "ecs": "ecs", "ecr": "ecr",
              "ses": "ses", "secretsmanager": "secretsmanager", "ssm": "ssm", "sts": "sts", "iam": "iam"}
NOT_API = {"meta", "exceptions", "close", "can_paginate", "get_paginator", "get_waiter", "generate_presigned_url"}
# Allowed though no boto3 call makes them, each for its reason.
EXTRA = {
    # `docker push` and pulls to ECR speak the registry protocol with the token, not boto3.
    "ecr:BatchCheckLayerAvailability": "docker push to ECR",
    "ecr:InitiateLayerUpload": "docker push to ECR",
    "ecr:UploadLayerPart": "docker push to ECR",
    "ecr:CompleteLayerUpload": "docker push to ECR",
    "ecr:PutImage": "docker push to ECR",
    "ecr:BatchGetImage": "docker pull from ECR (the image-size preview, a check run's image)",
    "ecr:GetDownloadUrlForLayer": "docker pull from ECR",
    # ECS passes the task definition's task and execution roles on Mainline's behalf.
    "iam:PassRole": "register_task_definition with taskRoleArn / executionRoleArn",
    # A canary on ECS weighs the listener's two target groups (bot/infra/targets/ecs/traffic.py, landing).
    "elasticloadbalancing:DescribeListeners": "canary traffic weights on ECS",
    "elasticloadbalancing:ModifyListener": "canary traffic weights on ECS",
    # SSM parameters of type SecureString under a customer key are decrypted with it.
    "kms:Decrypt": "get_parameter(WithDecryption=True) on a SecureString under a customer-managed key",
}


# Called, but IAM cannot deny it: no statement needed.
NO_PERMISSION = {"sts:GetCallerIdentity"}


def _receiver(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _service_of_call(node: ast.expr) -> str | None:
    """"ecs" for `aws_client(s, "ecs", r)`, `session.client("ecs")`, `self._client("ssm")`."""
    if isinstance(node, ast.BoolOp):  # `sts or aws_client(base, "sts", region)`
        return next(filter(None, (_service_of_call(value) for value in node.values)), None)
    if not isinstance(node, ast.Call):
        return None
    name = _receiver(node.func) or ""
    if "client" not in name:
        return None
    for arg in node.args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value in IAM_PREFIX:
            return arg.value
    return None


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _bindings(tree: ast.Module) -> dict[str, str]:
    """Names (`self.ecs`, `ecr`) bound to a client of a service in one module."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        value = getattr(node, "value", None)
        service = _service_of_call(value) if value is not None else None
        for target in targets:
            name = _receiver(target)
            if service and name:
                assert bound.get(name, service) == service, f"{name} names clients of two services"
                bound[name] = service
    return bound


@cache
def _operations(service: str) -> dict[str, str]:
    client = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        service, region_name="us-east-1")
    return client.meta.method_to_api_mapping


def aws_calls() -> set[tuple[str, str]]:
    """(service, operation) for every AWS API call in bot/."""
    trees = list(_modules())
    local = {path: _bindings(tree) for path, tree in trees}
    anywhere = {name: service for bound in local.values() for name, service in bound.items()}
    found: set[tuple[str, str]] = set()
    for path, tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id == "call" and len(node.args) >= 2:
                client, operation = node.args[0], node.args[1]
                name = _receiver(client) or ""
                service = local[path].get(name) or anywhere.get(name) or _service_of_call(client)
                assert service, f"{path}:{node.lineno}: call() on a client this test cannot place"
                assert isinstance(operation, ast.Constant), f"{path}:{node.lineno}: the operation must be literal"
                assert operation.value in _operations(service), f"{path}:{node.lineno}: {service} has no " \
                                                                 f"operation {operation.value!r}"
                found.add((service, operation.value))
            elif isinstance(func, ast.Attribute) and func.attr not in NOT_API:
                name = _receiver(func.value) or ""
                here = _service_of_call(func.value) or local[path].get(name)
                if here:  # a client made in this module: every method called on it is an operation
                    assert func.attr in _operations(here), f"{path}:{node.lineno}: {here} has no {func.attr!r}"
                    found.add((here, func.attr))
                elif name in anywhere and func.attr in _operations(anywhere[name]):
                    found.add((anywhere[name], func.attr))  # a client handed in from another module
            if isinstance(func, ast.Attribute) and func.attr in ("get_paginator", "get_waiter"):
                raise AssertionError(f"{path}:{node.lineno}: teach this test {func.attr}")
    return found


def iam_action(service: str, operation: str) -> str:
    return f"{IAM_PREFIX[service]}:{_operations(service)[operation]}"


@pytest.fixture(scope="module")
def policy() -> dict:
    return json.loads(POLICY.read_text())


def allowed(policy: dict) -> list[str]:
    actions: list[str] = []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.extend([listed] if isinstance(listed, str) else listed)
    return actions


def test_every_aws_call_in_the_code_is_allowed_by_the_policy(policy):
    calls = aws_calls()
    # What the scan must see, or it has gone blind (each is a call the code makes today).
    assert {("ecs", "update_service"), ("ecr", "get_authorization_token"), ("ses", "send_email"),
            ("cloudwatch", "describe_alarms"), ("secretsmanager", "get_secret_value"),
            ("ssm", "get_parameter")} <= calls
    missing = sorted(a for s, o in calls if (a := iam_action(s, o)) not in NO_PERMISSION
                     and not any(fnmatch.fnmatchcase(a, p) for p in allowed(policy)))
    assert missing == [], f"deploy/iam-policy.json lacks {missing}"


def test_the_policy_allows_nothing_the_code_does_not_call(policy):
    used = {iam_action(s, o) for s, o in aws_calls()} | set(EXTRA)
    for action in allowed(policy):
        assert "*" not in action, f"{action}: name each action"
        assert action in used, f"{action} is allowed but Mainline never calls it: remove it"


def test_pass_role_is_only_for_ecs_tasks(policy):
    [statement] = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert statement["Resource"] != "*"


def test_the_doctor_simulates_the_same_policy():
    shipped = ROOT / "bot" / "doctor" / "iam-policy.json"  # package data: the doctor's list of actions
    assert json.loads(shipped.read_text()) == json.loads(POLICY.read_text()), f"cp {POLICY} {shipped}"
