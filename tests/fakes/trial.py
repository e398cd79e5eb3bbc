"""A CandidateTrial over the fake world: a candidate's image is judged bad when it is in `bad`
(as FakeTarget judges a release), or by the verdicts `script`ed for it, one per trial (a flaky
candidate). `faults` raise as the machinery would; each trial advances `clock` by `seconds`."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import RolloutPlan, VerifyReport
from bot.ports import EventSink


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FakeTrial:
    def __init__(self, clock: FakeClock | None = None, seconds: float = 10.0) -> None:
        self.bad: set[str] = set()  # images that fail
        self.script: dict[str, list[str]] = {}  # image -> verdicts of its next trials: good | bad | inconclusive
        self.faults: dict[str, Exception] = {}  # image -> error its trial raises
        self.tried: list[str] = []  # sha of each trial, in order
        self.weights: list[int] = []  # the share of users' requests each trial took (0: shadow)
        self.clock = clock or FakeClock()
        self.seconds = seconds

    def judge(self, plan: RolloutPlan, checks: Sequence[tuple[str, int]], on_event: EventSink,
              weight: int = 0) -> VerifyReport:
        self.tried.append(plan.sha)
        self.weights.append(weight)
        self.clock.t += self.seconds
        if plan.image in self.faults:
            raise self.faults[plan.image]
        scripted = self.script.get(plan.image)
        verdict = scripted.pop(0) if scripted else ("bad" if plan.image in self.bad else "good")
        on_event(f"tried {plan.image}: {verdict}")
        if verdict == "inconclusive":
            return VerifyReport(False, 0, 0, 0, 0, reason="no probe answered in time")
        if verdict == "bad":
            return VerifyReport(False, 5, 3, 100, 40, reason="5xx rate 40.0% over 1.0%", last_output="500")
        return VerifyReport(True, 5, 0, 100, 0)
