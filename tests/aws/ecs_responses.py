"""Responses for botocore's Stubber, for the ECS sequences moto does not model (a deployment the
circuit breaker fails and rolls back, a target failing its health checks).

Written by us after the response shapes and examples of the Amazon ECS API Reference
(DescribeServices, UpdateService, DescribeTaskDefinition, RegisterTaskDefinition) and the
Elastic Load Balancing API Reference (DescribeTargetHealth); field names, enum values and the
wording of rolloutStateReason and service events follow what ECS returns. Stubber also checks
every response against botocore's service model, so a wrong field fails the test."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
TARGET_GROUP = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/web/6d0ecf831eec9f09"
SUBNETS = ["subnet-0b3a6f1e2c4d5e6f7", "subnet-0c4b7a2f3d5e6f708"]
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def revision_arn(revision: int) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:{revision}"


def task_definition(revision: int, image: str) -> dict:
    """DescribeTaskDefinition's taskDefinition, read-only fields included."""
    return {
        "taskDefinitionArn": revision_arn(revision),
        "family": "web",
        "revision": revision,
        "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/web-task",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
        "networkMode": "awsvpc",
        "containerDefinitions": [
            {
                "name": "web", "image": image, "cpu": 0, "essential": True,
                "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
                "environment": [{"name": "PORT", "value": "8080"}],
                "mountPoints": [], "volumesFrom": [],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/web", "awslogs-region": REGION, "awslogs-stream-prefix": "web"}},
            },
        ],
        "volumes": [],
        "status": "ACTIVE",
        "requiresAttributes": [
            {"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"},
            {"name": "ecs.capability.execution-role-awslogs"},
            {"name": "com.amazonaws.ecs.capability.ecr-auth"},
            {"name": "ecs.capability.task-eni"},
        ],
        "placementConstraints": [],
        "compatibilities": ["EC2", "FARGATE"],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "registeredAt": T0 - timedelta(days=revision),
        "registeredBy": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/mainline",
    }


def registration_of(definition: dict, image: str) -> dict:
    """What RegisterTaskDefinition must be sent to copy `definition` with only the image changed."""
    params = {k: v for k, v in copy.deepcopy(definition).items() if k not in (
        "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
        "registeredAt", "registeredBy")}
    params["containerDefinitions"][0]["image"] = image
    return params


def deployment(deployment_id: str, status: str, revision: int, rollout: str, *, running: int,
               failed: int = 0, reason: str = "") -> dict:
    return {
        "id": deployment_id,
        "status": status,
        "taskDefinition": revision_arn(revision),
        "desiredCount": 2,
        "pendingCount": max(0, 2 - running) if rollout == "IN_PROGRESS" else 0,
        "runningCount": running,
        "failedTasks": failed,
        "createdAt": T0,
        "updatedAt": T0 + timedelta(minutes=3),
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "platformFamily": "Linux",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": SUBNETS, "assignPublicIp": "DISABLED"}},
        "rolloutState": rollout,
        "rolloutStateReason": reason or (f"ECS deployment {deployment_id} completed." if rollout == "COMPLETED"
                                         else f"ECS deployment {deployment_id} in progress."),
    }


def service(revision: int, deployments: list[dict], events: list[str] = ()) -> dict:
    """DescribeServices' (and UpdateService's) service."""
    return {
        "serviceArn": SERVICE_ARN,
        "serviceName": "web",
        "clusterArn": CLUSTER_ARN,
        "loadBalancers": [{"targetGroupArn": TARGET_GROUP, "containerName": "web", "containerPort": 8080}],
        "serviceRegistries": [],
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": sum(d["runningCount"] for d in deployments),
        "pendingCount": sum(d["pendingCount"] for d in deployments),
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "platformFamily": "Linux",
        "taskDefinition": revision_arn(revision),
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200, "minimumHealthyPercent": 100,
        },
        "deployments": deployments,
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
        "events": [{"id": f"e{i}", "createdAt": T0 + timedelta(minutes=i), "message": m} for i, m in enumerate(events)],
        "createdAt": T0 - timedelta(days=30),
        "placementConstraints": [],
        "placementStrategy": [],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": SUBNETS, "assignPublicIp": "DISABLED"}},
        "healthCheckGracePeriodSeconds": 30,
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
        "createdBy": f"arn:aws:iam::{ACCOUNT}:role/platform",
        "enableECSManagedTags": True,
        "propagateTags": "NONE",
        "enableExecuteCommand": False,
    }


def described(svc: dict) -> dict:
    return {"services": [svc], "failures": []}


def target_health(*states: tuple[str, str, str, str]) -> dict:
    """DescribeTargetHealth from (ip, state, reason, description) tuples."""
    descriptions = []
    for i, (ip, state, reason, description) in enumerate(states):
        health = {"State": state}
        if reason:
            health.update(Reason=reason, Description=description)
        descriptions.append({
            "Target": {"Id": ip, "Port": 8080, "AvailabilityZone": f"{REGION}{'ab'[i % 2]}"},
            "HealthCheckPort": "8080",
            "TargetHealth": health,
        })
    return {"TargetHealthDescriptions": descriptions}


def fargate_task(task_id: str, revision: int, image: str, ip: str, health: str) -> dict:
    """DescribeTasks' task for a Fargate task in awsvpc mode."""
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/{task_id}"
    return {
        "taskArn": arn,
        "clusterArn": CLUSTER_ARN,
        "taskDefinitionArn": revision_arn(revision),
        "group": "service:web",
        "startedBy": "ecs-svc/3488129034526139183",
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "platformFamily": "Linux",
        "availabilityZone": f"{REGION}a",
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "healthStatus": health,
        "connectivity": "CONNECTED",
        "cpu": "256",
        "memory": "512",
        "createdAt": T0,
        "startedAt": T0 + timedelta(seconds=40),
        "attachments": [{"id": "8c3e7b0a-1f2d-4c5b-9a8e-7d6c5b4a3f2e", "type": "ElasticNetworkInterface",
                         "status": "ATTACHED", "details": [
                             {"name": "subnetId", "value": SUBNETS[0]},
                             {"name": "networkInterfaceId", "value": "eni-0a1b2c3d4e5f60718"},
                             {"name": "privateIPv4Address", "value": ip}]}],
        "containers": [{
            "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/prod/{task_id}/"
                            "5e2f1a3b-7c9d-4e8f-a1b2-c3d4e5f60718",
            "taskArn": arn, "name": "web", "image": image,
            "imageDigest": "sha256:" + "4f" * 32,
            "lastStatus": "RUNNING", "healthStatus": health,
            "networkBindings": [],
            "networkInterfaces": [{"attachmentId": "8c3e7b0a-1f2d-4c5b-9a8e-7d6c5b4a3f2e", "privateIpv4Address": ip}],
            "cpu": "0",
        }],
    }
