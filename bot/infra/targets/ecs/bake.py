"""The bake on ECS: the configured CloudWatch alarms and the load balancer's target health."""

from __future__ import annotations

import time
from typing import Any

from bot.config import EcsSettings
from bot.domain import RolloutPlan, VerifyReport
from bot.errors import InfrastructureFailure
from bot.infra.aws.client import call
from bot.infra.aws.errors import EcsError
from bot.infra.targets.ecs.model import MISSING_ALARM, TARGET_STATES_LEAVING, EcsService, Probe
from bot.infra.targets.ecs.tags import ALARMS_TAG, alarms_from, read_tag
from bot.infra.targets.ecs.traffic import Traffic
from bot.ports import EventSink

DEFAULT_BAKE = 30.0  # health.bake's default in .github/deploy.yml


class Bake(Traffic):
    """The verify half of an ECS target (a mixin of EcsTarget)."""

    settings: EcsSettings
    ecs: Any
    elbv2: Any
    cloudwatch: Any
    alarming_before: dict[str, set[str]]

    def service(self) -> EcsService:
        raise NotImplementedError

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        """Bake: probe the alarms and the target group every `interval` for `bake` seconds.

        An alarm that goes into ALARM during the bake ends it at once. An alarm already in ALARM
        before the deploy started (recorded by roll_out) is reported and not held against the
        release unless it clears and fires again. Without that record (a restarted worker), an
        alarm in ALARM as the bake starts is given the bake to clear, and fails it only if still
        in ALARM at the end. The default bake is stretched to the alarms' evaluation window."""
        health = plan.health
        bake = self._bake_seconds(health.bake, on_event)
        target_group = self._target_group()
        probes = failed = streak = 0
        last = ""
        before = self.alarming_before.get(plan.sha)
        if before is None and self.settings.alarms:
            before = self._recorded_before(plan.sha)
        lingering: set[str] | None = None  # alarms in ALARM at the first probe and not yet seen clear
        deadline = time.monotonic() + bake  # from the first probe: the look-ups above are not the bake
        while True:
            probes += 1
            firing = self.alarms_firing()
            if lingering is None:
                lingering = {name for name, why in firing.items() if not why.endswith(MISSING_ALARM)}
                if before is not None:
                    # With the record, an alarm that was OK before the deploy and is in ALARM now
                    # is this release's: it fails the bake at once, it does not linger.
                    ignored, lingering = lingering & before, set()
                    if ignored:
                        on_event(f"{', '.join(sorted(ignored))} was in ALARM before the deploy started: reported, "
                                 "not held against the release", step="ecs_alarm_before", alarms=sorted(ignored))
                    before = ignored
                elif lingering:
                    on_event(f"bake probe 1: {', '.join(sorted(lingering))} already in ALARM as the bake starts; "
                             f"waiting up to {bake:g}s for it to clear", step="ecs_alarm_lingering")
            if before:
                before &= set(firing)  # once seen clear, an alarm counts again
            lingering &= set(firing)
            fresh = {name: why for name, why in firing.items() if name not in lingering and name not in (before or ())}
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
                      f"and did not clear in {bake:g}s")
            return VerifyReport(False, probes, failed, 0, 0, reason=reason, last_output=reason)
        on_event(f"baked {bake:g}s: {probes} probes, {failed} failed", step="ecs_baked")
        return VerifyReport(True, probes, failed, 0, 0, last_output=last)

    def _recorded_before(self, sha: str) -> set[str] | None:
        """The alarms in ALARM before `sha`'s rollout, as the rollout left them on the service
        (another worker, or another process, may have run it)."""
        try:
            arn = self.service().arn
        except EcsError:
            return None
        return alarms_from(read_tag(self.ecs, arn, ALARMS_TAG), sha, self.settings.alarms)

    def _bake_seconds(self, bake: float, on_event: EventSink) -> float:
        """The bake, at least one evaluation window of the watched alarms when it is the default."""
        window = max((a.get("Period", 0) * a.get("EvaluationPeriods", 1) for a in self._alarms()), default=0)
        if window <= bake:
            return bake
        if bake == DEFAULT_BAKE:
            on_event(f"baking {window:g}s instead of {bake:g}s: the alarms need that long to see the release",
                     step="ecs_bake_stretched")
            return float(window)
        on_event(f"the bake ({bake:g}s) is shorter than the alarms' {window:g}s evaluation window: they may not "
                 "see this release's errors before it is called good", step="ecs_bake_short")
        return bake

    def _alarms(self) -> list[dict]:
        names = self.settings.alarms
        if not names:
            return []
        resp = call(self.cloudwatch, "describe_alarms", AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        return resp.get("MetricAlarms", []) + resp.get("CompositeAlarms", [])

    def check_alarms_exist(self) -> None:
        """Refuse, before anything changes, alarms named in deploy.yml that CloudWatch does not have."""
        names = self.settings.alarms
        missing = sorted(set(names) - {a["AlarmName"] for a in self._alarms()}) if names else []
        if missing:
            raise InfrastructureFailure(
                f"CloudWatch alarm {', '.join(missing)}{MISSING_ALARM} in {self.settings.region}: fix `ecs.alarms` "
                "in .github/deploy.yml; nothing was changed", "configuration", restore=False)

    def _target_group(self) -> str | None:
        if self.settings.listener_arn:  # two target groups: the one production traffic goes to
            return self.listener_target()
        if self.settings.target_group_arn:
            return self.settings.target_group_arn
        groups = self.service().target_groups
        return groups[0] if groups else None

    def _probe(self, target_group: str | None) -> Probe:
        """The target group's health (the alarms are looked at by `verify`)."""
        if target_group is None:
            return Probe()
        return Probe(self._targets_unhealthy(target_group))

    def alarms_firing(self) -> dict[str, str]:
        """The configured alarms in ALARM, each with what a person should read; an alarm named
        in the settings that does not exist counts as firing."""
        names = self.settings.alarms
        if not names:
            return {}
        alarms = self._alarms()
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
        present = [t for t in resp.get("TargetHealthDescriptions", [])
                   if t["TargetHealth"]["State"] not in TARGET_STATES_LEAVING]
        # A target still `initial` (a scale-out registering it) takes no traffic yet: it is not
        # the release's failure, unless nothing else serves.
        serving = [t for t in present if t["TargetHealth"]["State"] != "initial"] or present
        if not serving:
            return f"no targets registered in {target_group.rsplit(':', 1)[-1]}"
        bad = [t for t in serving if t["TargetHealth"]["State"] != "healthy"]
        if not bad:
            return ""
        t = bad[0]
        health = t["TargetHealth"]
        return (f"{len(bad)} of {len(serving)} targets not healthy; {t['Target']['Id']}:{t['Target'].get('Port', '')} "
                f"is {health['State']} ({health.get('Reason', '')}: {health.get('Description', '')})")

