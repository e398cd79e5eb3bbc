"""Canary on ECS by weighted target groups (EXTERNAL controller, `ecs.listener_arn` and
`ecs.alternate_target_group_arn`): the new task set serves from the idle group, the listener
forwards each step's weight to it, and every interval the load balancer's CloudWatch metrics of
both groups (requests and target 5xx since the canary started) are judged by bot/canary's
analysis, the same judge as on Docker. A failed canary puts all traffic back on the live group
and raises CanaryFailedError (rolled back, reverted); one that cannot be judged raises
CanaryStuckError (failed, nothing reverted)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.canary.analysis import FAIL, INCONCLUSIVE, Observed, Tally, judge_interval
from bot.canary.errors import CanaryFailedError, CanaryStuckError
from bot.canary.policy import HTTP_5XX_RATIO, CanaryPolicy
from bot.canary.stats import Ratio
from bot.config import EcsSettings
from bot.infra.aws.client import call
from bot.ports import EventSink

PERIOD = 60  # seconds: the ALB's metrics are per minute


def dimension(arn: str, marker: str) -> str:
    """CloudWatch's dimension value for an ELB ARN: `targetgroup/web/6d0e…`, `app/web/50dc…`."""
    return arn[arn.index(marker):] if marker in arn else arn


class WeightedCanary:
    """The canary half of an ECS target (a mixin of EcsTarget)."""

    settings: EcsSettings
    elbv2: Any
    cloudwatch: Any

    def set_weights(self, live: str, idle: str, weight: int) -> None:
        call(self.elbv2, "modify_listener", ListenerArn=self.settings.listener_arn, DefaultActions=[{
            "Type": "forward", "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": live, "Weight": 100 - weight}, {"TargetGroupArn": idle, "Weight": weight}]}}])

    def run_canary(self, live: str, idle: str, policy: CanaryPolicy, on_event: EventSink) -> None:
        tally = Tally(policy)
        started = datetime.now(UTC)
        balancer = call(self.elbv2, "describe_listeners", ListenerArns=[self.settings.listener_arn]
                        )["Listeners"][0]["LoadBalancerArn"]
        for number, step in enumerate(policy.steps, 1):
            self.set_weights(live, idle, step.weight)
            on_event(f"canary step {number}: {step.weight}% of requests to {dimension(idle, 'targetgroup/')}",
                     kind="canary", notify=True, step=number, weight=step.weight, verdict="started")
            ends = time.monotonic() + step.pause
            while True:
                time.sleep(max(0.0, min(policy.interval, ends - time.monotonic())))
                observed = self._observed(balancer, live, idle, started, policy)
                verdict = judge_interval(number, step.weight, observed, policy)
                decision = tally.add(verdict)
                on_event(verdict.summary(), kind="canary", notify=decision != "pass", **verdict.as_data())
                if decision in (FAIL, INCONCLUSIVE):
                    self.set_weights(live, idle, 0)
                    error = CanaryFailedError if decision == FAIL else CanaryStuckError
                    raise error(verdict.summary())
                if time.monotonic() >= ends:
                    break

    def _observed(self, balancer: str, live: str, idle: str, started: datetime,
                  policy: CanaryPolicy) -> dict[str, Observed]:
        sums = self._sums(balancer, (live, idle), started)
        baseline = Ratio(min(sums[(live, "5xx")], sums[(live, "all")]), sums[(live, "all")])
        canary = Ratio(min(sums[(idle, "5xx")], sums[(idle, "all")]), sums[(idle, "all")])
        return {spec.name: Observed(canary=canary, baseline=baseline) for spec in policy.metrics
                if spec.builtin == HTTP_5XX_RATIO}

    def _sums(self, balancer: str, groups: tuple[str, ...], started: datetime) -> dict[tuple[str, str], int]:
        queries, keys = [], {}
        for i, group in enumerate(groups):
            for kind, metric in (("all", "RequestCount"), ("5xx", "HTTPCode_Target_5XX_Count")):
                qid = f"m{i}{kind.replace('5xx', 'e')}"
                keys[qid] = (group, kind)
                dimensions = [{"Name": "TargetGroup", "Value": dimension(group, "targetgroup/")},
                              {"Name": "LoadBalancer", "Value": dimension(balancer, "app/")}]
                stat = {"Period": PERIOD, "Stat": "Sum", "Metric": {
                    "Namespace": "AWS/ApplicationELB", "MetricName": metric, "Dimensions": dimensions}}
                queries.append({"Id": qid, "ReturnData": True, "MetricStat": stat})
        now = datetime.now(UTC)
        resp = call(self.cloudwatch, "get_metric_data", MetricDataQueries=queries,
                    StartTime=started - timedelta(seconds=PERIOD), EndTime=now + timedelta(seconds=PERIOD))
        sums = dict.fromkeys(keys.values(), 0)
        for result in resp.get("MetricDataResults", []):
            sums[keys[result["Id"]]] = int(sum(result.get("Values", [])))
        return sums
