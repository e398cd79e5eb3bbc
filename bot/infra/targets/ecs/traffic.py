"""Blue-green on the EXTERNAL controller with two target groups (`ecs.listener_arn` and
`ecs.alternate_target_group_arn`): the new task set registers in the target group the listener
does not forward to, so it takes no production traffic until the switch; the switch points the
listener at it; the old set stays at 100% behind the other group through the bake, so a rollback
is one switch back."""

from __future__ import annotations

from typing import Any

from bot.config import EcsSettings
from bot.infra.aws.client import call
from bot.infra.aws.errors import EcsError
from bot.ports import EventSink


class Traffic:
    """The listener half of an ECS target (a mixin of EcsTarget)."""

    settings: EcsSettings
    elbv2: Any

    def two_groups(self, service_groups: tuple[str, ...]) -> tuple[str, str] | None:
        """(the target group production traffic goes to, the idle one), when configured."""
        if not (self.settings.listener_arn and self.settings.alternate_target_group_arn):
            return None
        blue = self.settings.target_group_arn or (service_groups[0] if service_groups else "")
        green = self.settings.alternate_target_group_arn
        live = self.listener_target()
        if live not in (blue, green):
            raise EcsError(f"listener {self.settings.listener_arn} forwards to {live or 'nothing'}, neither "
                           f"{blue} nor {green}: not switching a listener Mainline does not understand",
                           operation="roll_out")
        return (live, green if live == blue else blue)

    def listener_target(self) -> str:
        listener = call(self.elbv2, "describe_listeners", ListenerArns=[self.settings.listener_arn])["Listeners"][0]
        action: dict = next((a for a in listener.get("DefaultActions", []) if a.get("Type") == "forward"), {})
        if action.get("TargetGroupArn"):
            return action["TargetGroupArn"]
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups", [])
        # Weighted (a canary): the group that takes most of the traffic.
        return max(groups, key=lambda g: g.get("Weight", 1))["TargetGroupArn"] if groups else ""

    def switch_traffic(self, target_group: str, on_event: EventSink) -> None:
        if self.listener_target() == target_group:
            return
        call(self.elbv2, "modify_listener", ListenerArn=self.settings.listener_arn,
             DefaultActions=[{"Type": "forward", "TargetGroupArn": target_group}])
        on_event(f"listener switched to {target_group.rsplit(':', 1)[-1]}: production traffic goes to it",
                 step="ecs_traffic_switched", target_group=target_group)
