"""The bake on ECS: the configured CloudWatch alarms and the load balancer's target health."""

from __future__ import annotations

import time
from typing import Any

from bot.config import EcsSettings
from bot.domain import RolloutPlan, VerifyReport
from bot.infra.aws.client import call
from bot.infra.targets.ecs.model import MISSING_ALARM, TARGET_STATES_LEAVING, EcsService, Probe
from bot.ports import EventSink


class Bake:
    """The verify half of an ECS target (a mixin of EcsTarget)."""

    settings: EcsSettings
    elbv2: Any
    cloudwatch: Any

    def service(self) -> EcsService:
        raise NotImplementedError

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        """Bake: probe the alarms and the target group every `interval` for `bake` seconds.

        An alarm that goes into ALARM during the bake ends it at once. An alarm already in ALARM
        when the bake starts is most often the bad release's we are rolling back from (a metric
        alarm needs a period or more to see the 5xx stop), so it is given the bake to clear and
        fails the bake only if it is still in ALARM at the end; once seen clear, it is fresh again."""
        health = plan.health
        deadline = time.monotonic() + health.bake
        target_group = self._target_group()
        probes = failed = streak = 0
        last = ""
        lingering: set[str] | None = None  # alarms in ALARM at the first probe and not yet seen clear
        while True:
            probes += 1
            firing = self._alarms_firing()
            if lingering is None:
                lingering = {name for name, why in firing.items() if not why.endswith(MISSING_ALARM)}
                if lingering:
                    on_event(f"bake probe 1: {', '.join(sorted(lingering))} already in ALARM as the bake starts; "
                             f"waiting up to {health.bake:g}s for it to clear", step="ecs_alarm_lingering")
            lingering &= set(firing)
            fresh = {name: why for name, why in firing.items() if name not in lingering}
            probe = Probe(next(iter(fresh.values())), final=True) if fresh else self._probe(target_group)
            if probe.problem:
                failed += 1
                streak += 1
                last = probe.problem
                on_event(f"bake probe {probes}: {probe.problem}", step="ecs_probe_failed")
                if probe.final or streak >= health.failures:
                    return VerifyReport(False, probes, failed, 0, 0, reason=probe.problem, last_output=last)
            else:
                streak = 0
            if time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, min(health.interval, deadline - time.monotonic())))
        if lingering:
            name = sorted(lingering)[0]
            reason = (f"{firing[name]}; it was already in ALARM when the bake started "
                      f"and did not clear in {health.bake:g}s")
            return VerifyReport(False, probes, failed, 0, 0, reason=reason, last_output=reason)
        on_event(f"baked {health.bake:g}s: {probes} probes, {failed} failed", step="ecs_baked")
        return VerifyReport(True, probes, failed, 0, 0, last_output=last)


    def _target_group(self) -> str | None:
        if self.settings.target_group_arn:
            return self.settings.target_group_arn
        groups = self.service().target_groups
        return groups[0] if groups else None

    def _probe(self, target_group: str | None) -> Probe:
        """The target group's health (the alarms are looked at by `verify`)."""
        if target_group is None:
            return Probe()
        return Probe(self._targets_unhealthy(target_group))

    def _alarms_firing(self) -> dict[str, str]:
        """The configured alarms in ALARM, each with what a person should read; an alarm named
        in the settings that does not exist counts as firing."""
        names = self.settings.alarms
        if not names:
            return {}
        resp = call(self.cloudwatch, "describe_alarms", AlarmNames=names,
                    AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        alarms = resp.get("MetricAlarms", []) + resp.get("CompositeAlarms", [])
        firing = {
            a["AlarmName"]: f"CloudWatch alarm {a['AlarmName']} is in ALARM: {a.get('StateReason', '')}".rstrip(": ")
            for a in alarms if a.get("StateValue") == "ALARM"
        }
        # Deploying unwatched is worse than rolling back: the name in deploy.yml is wrong.
        for name in sorted(set(names) - {a["AlarmName"] for a in alarms}):
            firing[name] = f"CloudWatch alarm {name}{MISSING_ALARM}"
        return firing

    def _targets_unhealthy(self, target_group: str) -> str:
        resp = call(self.elbv2, "describe_target_health", TargetGroupArn=target_group)
        serving = [t for t in resp.get("TargetHealthDescriptions", [])
                   if t["TargetHealth"]["State"] not in TARGET_STATES_LEAVING]
        if not serving:
            return f"no targets registered in {target_group.rsplit(':', 1)[-1]}"
        bad = [t for t in serving if t["TargetHealth"]["State"] != "healthy"]
        if not bad:
            return ""
        t = bad[0]
        health = t["TargetHealth"]
        return (f"{len(bad)} of {len(serving)} targets not healthy; {t['Target']['Id']}:{t['Target'].get('Port', '')} "
                f"is {health['State']} ({health.get('Reason', '')}: {health.get('Description', '')})")

