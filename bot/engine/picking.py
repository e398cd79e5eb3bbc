"""Which deploy a driver works on next: the one in flight, else the newest queued commit whose
gates pass. Older queued shas that a newer one contains go out inside it (coalescing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain import IN_FLIGHT, DeployState, GateResult, GateStatus, utcnow
from bot.domain.records import DeployRecord
from bot.engine.context import Context
from bot.engine.notices import Notices
from bot.engine.transitions import Transition, Transitions
from bot.gating import Gatekeeper
from bot.ports import Gates

S = DeployState


@dataclass
class Picker:
    ctx: Context
    notices: Notices
    transitions: Transitions

    def gates(self) -> Gates:
        # Read on each use: the wiring may be given other gates while the pipeline runs.
        return self.ctx.w.gates or Gatekeeper(github=self.ctx.w.github)

    def gate(self, deploy: DeployRecord) -> list[GateResult]:
        """The pre-build gates for a queued deploy, in order."""
        return self.gates()(self.ctx, self.ctx.service_by_id(deploy.service_id), deploy)

    def current(self, service_id: int, environment: str, token: int) -> Any | None:
        """The deploy in flight, else the newest queued one whose gates pass (coalescing)."""
        store = self.ctx.store
        in_flight = store.deploys(service_id, environment, states=list(IN_FLIGHT), limit=1)
        if in_flight:
            return in_flight[0]
        queued = list(store.deploys(service_id, environment, states=[S.QUEUED.value], limit=50))
        live = store.live_release(service_id, environment)
        for deploy in self.newest_commits_first(service_id, queued, live, token):
            results = self.gate(deploy)
            waiting = next((r for r in results if not r.passed), None)
            if waiting is None:
                self.transitions.apply(deploy, token, Transition(
                    S.GATING, "gates passed: " + ", ".join(r.gate for r in results),
                    fields={"blocked_by": None, "pull_numbers": self.carried_pulls(deploy, queued),
                            "started_at": utcnow(), "attempts": deploy.attempts + 1,
                            "previous_sha": live.sha if live else None,
                            "previous_image": live.image if live else None}))
                self.notices.tell_gates(deploy, results)
                return store.deploy(deploy.id)
            self._hold(deploy, token, waiting, results)
        return None

    def _hold(self, deploy: DeployRecord, token: int, waiting: GateResult, results: list[GateResult]) -> None:
        """A gate that blocks fails the deploy; one that waits holds it, said once."""
        held = f"{waiting.gate}: {waiting.reason}"
        if waiting.status is GateStatus.BLOCK:
            self.notices.tell_gates(deploy, results)
            self.transitions.apply(deploy, token, Transition(
                S.FAILED, f"blocked by {waiting.gate}: {waiting.reason}", fields={"blocked_by": waiting.reason,
                                                                                 "reason": held}))
        elif deploy.blocked_by != held:
            self.transitions.apply(deploy, token, Transition(
                S.QUEUED, f"waiting on {held}", fields={"blocked_by": held}, kind="waiting",
                data={"gate": waiting.gate, "status": waiting.status.value, "reason": waiting.reason}))

    def newest_commits_first(self, service_id: int, queued: list, live: Any, token: int) -> list:
        """The queued deploys to try, tips of history first: rows are created out of order (late
        webhooks, the reconciler, several threads), so the newest row is not the newest commit.
        A queued sha the live release already contains went out inside it: superseded."""
        if not queued:
            return []
        service, git = self.ctx.service_by_id(service_id), self.ctx.w.git
        fresh = []
        for deploy in queued:
            if live and not deploy.manual and deploy.sha != live.sha and \
                    git.is_ancestor(service.clone_url, deploy.sha, live.sha):
                self.transitions.apply(deploy, token, Transition(S.SUPERSEDED, f"already live inside {live.sha[:12]}",
                                                                 fields={"reason": f"included in {live.sha[:12]}"}))
            else:
                fresh.append(deploy)
        if len(fresh) < 2:
            return fresh
        tips = set(git.independent(service.clone_url, [d.sha for d in fresh]))
        return [d for d in fresh if d.sha in tips] + [d for d in fresh if d.sha not in tips]

    def carried_pulls(self, deploy: DeployRecord, queued: list) -> list[int]:
        """The PRs this deploy ships: its own and those of the older queued shas it contains,
        so every PR in the release hears how it went."""
        service = self.ctx.service_by_id(deploy.service_id)
        numbers = set(deploy.pull_numbers or [])
        for older in queued:
            if older.id != deploy.id and older.pull_numbers and \
                    self.ctx.w.git.is_ancestor(service.clone_url, older.sha, deploy.sha):
                numbers.update(older.pull_numbers)
        return sorted(numbers)
