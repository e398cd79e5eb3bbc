"""Several ECS services of one release (`ecs.services`), rolled out one after another and rolled
back together: the engine's rollback rolls every service back to the previous release, and the
bake judges them all at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3

from bot.config import EcsSettings
from bot.domain import Replica, RolloutPlan, VerifyReport
from bot.infra.aws.session import session_for
from bot.infra.targets.ecs.model import ImagePusher
from bot.infra.targets.ecs.target import EcsTarget
from bot.ports import EventSink


def about(service: str, on_event: EventSink) -> EventSink:
    """An event sink that names the ECS service each event is about."""

    def sink(message: str, **data) -> None:
        on_event(f"[{service}] {message}", **{"ecs_service": service, **data})

    return sink


class EcsGroup:
    """bot.ports.Target over several EcsTargets."""

    def __init__(self, targets: list[EcsTarget]):
        self.targets = targets

    def roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
        for target in self.targets:
            target.roll_out(plan, about(target.settings.service, on_event))

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        with ThreadPoolExecutor(max_workers=len(self.targets)) as pool:
            reports = list(pool.map(lambda t: (t, t.verify(plan, about(t.settings.service, on_event))),
                                    self.targets))
        for target, report in reports:
            if not report.healthy:
                return VerifyReport(False, report.probes, report.failed_probes, report.requests, report.errors_5xx,
                                    reason=f"{target.settings.service}: {report.reason}",
                                    last_output=report.last_output)
        return VerifyReport(True, sum(r.probes for _, r in reports), sum(r.failed_probes for _, r in reports),
                            sum(r.requests for _, r in reports), sum(r.errors_5xx for _, r in reports))

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        for target in self.targets:
            target.finish(plan, about(target.settings.service, on_event))

    def discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
        for target in self.targets:
            target.discard(plan, about(target.settings.service, on_event))

    def replicas(self, service: str, environment: str) -> list[Replica]:
        return [r for target in self.targets for r in target.replicas(service, environment)]


def ecs_target(settings: EcsSettings, session: boto3.Session | None = None,
               builder: ImagePusher | None = None, poll: float = 5.0) -> EcsTarget | EcsGroup:
    """The target for an `ecs:` block: one service, or a group; through the assumed role if named."""
    session = session or session_for(settings.region, settings.assume_role)
    targets = [EcsTarget(unit, session=session, builder=builder, poll=poll) for unit in settings.units()]
    return targets[0] if len(targets) == 1 else EcsGroup(targets)
