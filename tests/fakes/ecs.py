"""The stateful ECS of sandbox/ecs_model.py, as the tests' fake ECS client: deployments with
their own ids and task definitions, the circuit breaker, stopped tasks, placement failures and
replaced deployments, every request and answer checked against botocore's service model."""

from sandbox.ecs_model import Deployment, EcsStandIn, Service

FakeEcs = EcsStandIn

__all__ = ["Deployment", "FakeEcs", "Service"]
