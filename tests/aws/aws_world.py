"""The ECS world the AWS tests start from, plans, and an event sink."""

from __future__ import annotations

import boto3

from bot.domain import HealthPolicy, RolloutPlan

REGION = "us-east-1"
# moto does not run ECS tasks; it reports this many running for every service, so a service
# of this desired count reads as a COMPLETED deployment (see moto/ecs/models.py).
DESIRED = 2
OLD_SHA = "a" * 40
NEW_SHA = "b" * 40
ACCOUNT = "123456789012"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


class EcsWorld:
    """What an ECS team has before Mainline arrives: a VPC, an ALB with a target group, a
    cluster, a task definition and a service behind the ALB, and a 5xx alarm."""

    def __init__(self, session: boto3.Session, image: str):
        ec2 = session.client("ec2")
        self.ecs = session.client("ecs")
        self.elbv2 = session.client("elbv2")
        self.cloudwatch = session.client("cloudwatch")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")
                   ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
        lb = self.elbv2.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]
        self.target_group = self.elbv2.create_target_group(
            Name="web", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip", HealthCheckPath="/health",
        )["TargetGroups"][0]["TargetGroupArn"]
        self.elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": self.target_group}])
        self.ecs.create_cluster(clusterName="prod")
        self.first_revision = self.ecs.register_task_definition(
            family="web", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
            containerDefinitions=[
                {"name": "web", "image": image, "essential": True,
                 "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                 "environment": [{"name": "PORT", "value": "8080"}],
                 "healthCheck": {"command": ["CMD", "/bin/busybox", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
                                 "interval": 10, "timeout": 5, "retries": 3}},
                {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
                 "essential": False},
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        self.ecs.create_service(
            cluster="prod", serviceName="web", taskDefinition=self.first_revision, desiredCount=DESIRED,
            launchType="FARGATE",
            loadBalancers=[{"targetGroupArn": self.target_group, "containerName": "web", "containerPort": 8080}],
            networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": []}},
        )
        # moto starts no tasks, so register the two task IPs ECS would put in the target group.
        self.elbv2.register_targets(TargetGroupArn=self.target_group,
                                    Targets=[{"Id": "10.0.1.10", "Port": 8080}, {"Id": "10.0.2.10", "Port": 8080}])
        self.cloudwatch.put_metric_alarm(
            AlarmName="web-target-5xx", Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
            Dimensions=[{"Name": "TargetGroup", "Value": self.target_group.split(":")[-1]}],
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
        )

    def service(self) -> dict:
        return self.ecs.describe_services(cluster="prod", services=["web"])["services"][0]

    def revisions(self) -> list[str]:
        return self.ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]

    def definition(self, arn: str) -> dict:
        return self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]

    def set_alarm(self, state: str, reason: str) -> None:
        self.cloudwatch.set_alarm_state(AlarmName="web-target-5xx", StateValue=state, StateReason=reason)

FAST_HEALTH = HealthPolicy(path="/health", interval=0.05, failures=2, bake=0.3, timeout=5.0)


def plan(sha: str, image: str) -> RolloutPlan:
    return RolloutPlan(service="web", environment="production", sha=sha, image=image, replicas=2,
                       strategy="rolling", health=FAST_HEALTH, listen="127.0.0.1:8080")


class Events:
    """An EventSink that keeps what a person would read on the deploy page."""

    def __init__(self):
        self.items: list[tuple[str, dict]] = []

    def __call__(self, message: str, **data) -> None:
        self.items.append((message, data))

    @property
    def steps(self) -> list[str]:
        return [data.get("step", "") for _, data in self.items]

    @property
    def messages(self) -> list[str]:
        return [message for message, _ in self.items]
