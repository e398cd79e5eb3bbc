"""`apply()`: the only writer of a deploy's state. It checks the move against the table of
bot.domain.states, writes it fenced by the lease token (a driver that lost its lease writes
nothing), records the event and tells the reporters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.domain import DeployRequest, DeployState, can_transition, utcnow
from bot.domain.records import DeployRecord
from bot.engine.context import Context
from bot.engine.notices import Notices
from bot.errors import MainlineError


@dataclass(frozen=True)
class Transition:
    """A move a step asks for; nothing is written until it is applied."""

    target: DeployState
    message: str
    fields: dict[str, Any] = field(default_factory=dict)  # columns written with the state
    data: dict | None = None  # the event's data (evidence, gate results)
    kind: str | None = None  # the event's kind; the target state's name when None
    by: str | None = None
    # Moves of other deploys that come with this one (coalesced shas), applied after it.
    follow: tuple[tuple[DeployRecord, Transition], ...] = ()
    # A deploy to ask for once applied (the branch head after a revert).
    request: DeployRequest | None = None


@dataclass
class Transitions:
    ctx: Context
    notices: Notices
    request: Callable[[DeployRequest], object]

    def apply(self, deploy: DeployRecord, token: int | None, move: Transition) -> None:
        """Write `move` for `deploy`. `token` None only for a person's command made outside a
        driver (the command checks that nothing is in flight)."""
        current = DeployState(self.ctx.store.deploy(deploy.id).state)
        if current is not move.target and not can_transition(current, move.target):
            raise MainlineError(f"deploy {deploy.id} cannot go from {current.value} to {move.target.value}")
        fields = dict(move.fields)
        if move.target.terminal:
            fields.setdefault("finished_at", utcnow())
        self.ctx.store.update_deploy(deploy.id, token, state=move.target, **fields)
        self.notices.event(deploy, move.kind or move.target.value, move.message, by=move.by, data=move.data)
        for other, then in move.follow:
            self.apply(other, token, then)
        if move.request is not None:
            self.request(move.request)

    def queue_again(self, deploy: DeployRecord, message: str, *, requested_by: str, manual: bool,
                    force_reason: str | None = None, watchdog: bool = False) -> bool:
        """Queue an ended deploy again: a failed or superseded sha a person (or a revert) asks for,
        or, for the watchdog, a head recorded live that no longer runs. False when it is not ended
        that way (queued, in flight, reverted): nothing to do."""
        again = {DeployState.FAILED, DeployState.SUPERSEDED} | ({DeployState.LIVE} if watchdog else set())
        if DeployState(self.ctx.store.deploy(deploy.id).state) not in again:
            return False
        self.apply(deploy, None, Transition(DeployState.QUEUED, message, kind="queued", fields={
            "reason": None, "blocked_by": None, "manual": int(manual), "requested_by": requested_by,
            "force_reason": force_reason, "step_failures": 0, "finished_at": None}))
        return True
