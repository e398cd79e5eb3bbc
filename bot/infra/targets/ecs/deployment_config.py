"""The service's deployment settings, merged rather than overwritten: Terraform or CloudFormation
may own minimumHealthyPercent, maximumPercent and the rest, so Mainline only adds what it needs
(the circuit breaker, its CloudWatch alarms as ECS deployment alarms, an asked-for strategy) and
says so when it does."""

from __future__ import annotations

import copy
import math
from typing import Any

from bot.errors import InfrastructureFailure

STRATEGIES = {"rolling": "ROLLING", "blue-green": "BLUE_GREEN", "canary": "CANARY"}


def merged(current: dict | None, alarms: list[str], strategy: str | None = None, bake_seconds: float = 0.0,
           canary_percent: float = 10.0) -> tuple[dict | None, list[str]]:
    """(the deploymentConfiguration to send, None when nothing changes; what was added, for people)."""
    config: dict[str, Any] = copy.deepcopy(current or {})
    notes: list[str] = []
    breaker = config.get("deploymentCircuitBreaker") or {}
    if not breaker.get("enable"):
        config["deploymentCircuitBreaker"] = {"enable": True, "rollback": True}
        notes.append("the deployment circuit breaker was off; Mainline turned it on (with rollback) to see a "
                     "failed rollout: manage it where the service is defined to keep this change")
    if alarms:
        have = config.get("alarms") or {}
        names = sorted(set(have.get("alarmNames", [])) | set(alarms))
        wanted = {"alarmNames": names, "enable": True, "rollback": True}
        if have != wanted:
            config["alarms"] = wanted
            notes.append(f"ECS deployment alarms now watch {', '.join(names)} with rollback on")
    if strategy is not None:
        native = STRATEGIES[strategy]
        if config.get("strategy", "ROLLING") != native:
            config["strategy"] = native
            notes.append(f"the deployment strategy is now {native}")
        if native in ("BLUE_GREEN", "CANARY"):
            minutes = max(1, math.ceil(bake_seconds / 60))
            if config.get("bakeTimeInMinutes") != minutes:
                config["bakeTimeInMinutes"] = minutes
        if native == "CANARY":
            canary = {"canaryPercent": canary_percent, "canaryBakeTimeInMinutes": max(1, math.ceil(bake_seconds / 60))}
            if config.get("canaryConfiguration") != canary:
                config["canaryConfiguration"] = canary
    return (None if config == (current or {}) else config), notes


def missing_for_traffic_shift(raw_service: dict, strategy: str) -> str:
    """What the service lacks for ECS's BLUE_GREEN or CANARY strategy, '' when nothing."""
    balancers = raw_service.get("loadBalancers", [])
    if not balancers:
        return f"a load balancer: {STRATEGIES[strategy]} shifts traffic between two target groups"
    advanced = balancers[0].get("advancedConfiguration") or {}
    for key, what in (("alternateTargetGroupArn", "a second (alternate) target group"),
                      ("productionListenerRule", "the production listener rule"),
                      ("roleArn", "a role ECS assumes to switch the listener")):
        if not advanced.get(key):
            return f"{what} (loadBalancers[].advancedConfiguration.{key})"
    return ""


def refuse_unless_ready(raw_service: dict, strategy: str | None) -> None:
    if strategy not in ("blue-green", "canary"):
        return
    missing = missing_for_traffic_shift(raw_service, strategy)
    if missing:
        raise InfrastructureFailure(
            f"ECS service {raw_service.get('serviceName')} cannot do {STRATEGIES[strategy]}: it lacks {missing}; "
            "add it where the service is defined, or use strategy: rolling; nothing was changed",
            "configuration", restore=False)
