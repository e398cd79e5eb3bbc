"""The bisection, pure: given the first-parent commits of a failed release (the last one known
bad, the one before the first known good), which commit to try next, and when the search is
over. Nothing here builds, runs or waits: `run()` is handed a `judge` and a clock.

The first bad commit is found in ⌈log2 N⌉ rounds. It is then confirmed: the culprit judged bad
once more (or, when it is the release's own tip, judged once and compared with the release's
verdict), and its parent judged good once more when a round judged it. A candidate judged twice
with different results is flaky, and a flaky or inconclusive round ends the search: then no
single commit is blamed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

GOOD, BAD, INCONCLUSIVE = "good", "bad", "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """What one trial of a candidate said, and why."""

    verdict: str  # good | bad | inconclusive
    reason: str = ""
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Round:
    round: int
    sha: str
    verdict: str
    reason: str = ""
    confirm: bool = False  # a second judgement of a candidate, to tell a flaky one

    def event(self) -> dict:
        return {"round": self.round, "sha": self.sha, "verdict": self.verdict}


@dataclass(frozen=True)
class Limits:
    max_rounds: int = 6
    budget: float = 1800.0  # seconds


@dataclass
class Outcome:
    commits: list[str]  # oldest first
    rounds: list[Round] = field(default_factory=list)
    culprit: str | None = None
    stopped: str | None = None  # why no single commit is blamed
    seconds: float = 0.0

    @property
    def search_rounds(self) -> int:
        return sum(1 for r in self.rounds if not r.confirm)


class SearchStopped(Exception):
    """The search ends without a culprit; the message says why."""


def rounds_needed(n: int) -> int:
    """Rounds a bisection of `n` commits takes, the last one known bad: ⌈log2 n⌉."""
    return math.ceil(math.log2(n)) if n > 1 else 0


@dataclass
class Search:
    """The interval still in doubt: `commits[lo]` is the newest known good (-1: the last good
    release), `commits[hi]` the oldest known bad."""

    commits: list[str]
    lo: int = -1
    hi: int = -1
    judged: dict[str, str] = field(default_factory=dict)  # sha -> verdict of its last trial

    def __post_init__(self) -> None:
        if self.hi < 0:
            self.hi = len(self.commits) - 1

    @property
    def done(self) -> bool:
        return self.hi - self.lo <= 1

    def candidate(self) -> str:
        return self.commits[(self.lo + self.hi) // 2]

    def record(self, sha: str, verdict: str) -> None:
        if verdict not in (GOOD, BAD):
            raise SearchStopped(f"the round on {sha[:12]} was inconclusive")
        index = self.commits.index(sha)
        if verdict == BAD:
            self.hi = min(self.hi, index)
        else:
            self.lo = max(self.lo, index)
        self.judged[sha] = verdict

    def to_confirm(self) -> list[tuple[str, str]]:
        """(sha, expected verdict) of the confirmation rounds: the culprit, and its parent when
        a round judged it (the last good release was verified live just now)."""
        culprit = self.commits[self.hi]
        checks = [(culprit, BAD)]
        if self.lo >= 0 and self.commits[self.lo] in self.judged:
            checks.append((self.commits[self.lo], GOOD))
        return checks


Judge = Callable[[str], Verdict]
OnRound = Callable[[Round, Verdict], None]


def run(commits: list[str], judge: Judge, limits: Limits, on_round: OnRound | None = None,
        now: Callable[[], float] = time.monotonic) -> Outcome:
    """Bisect `commits` (oldest first; the last is the failed release). Never raises for the
    search's own reasons: a stop is an Outcome with `stopped` set. Errors of `judge` propagate
    (the caller tells an infrastructure failure from the rest)."""
    started = now()
    outcome = Outcome(list(commits))
    search = Search(list(commits))

    def trial(sha: str, confirm: bool) -> str:
        spent = now() - started
        if spent >= limits.budget:
            raise SearchStopped(f"the time budget of {limits.budget:g}s ran out after {len(outcome.rounds)} round(s)")
        verdict = judge(sha)
        done = Round(len(outcome.rounds) + 1, sha, verdict.verdict, verdict.reason, confirm)
        outcome.rounds.append(done)
        if on_round is not None:
            on_round(done, verdict)
        return verdict.verdict

    try:
        if len(commits) < 2:
            raise SearchStopped("a release of one commit has nothing to bisect")
        while not search.done:
            if outcome.search_rounds >= limits.max_rounds:
                raise SearchStopped(f"max_rounds ({limits.max_rounds}) reached with "
                                    f"{search.hi - search.lo} commits still in doubt")
            sha = search.candidate()
            search.record(sha, trial(sha, confirm=False))
        for sha, expected in search.to_confirm():
            first = search.judged.get(sha, BAD)  # never tried: the tip, judged bad by the release itself
            again = trial(sha, confirm=True)
            if again == INCONCLUSIVE:
                raise SearchStopped(f"the confirmation of {sha[:12]} was inconclusive")
            if again != first or again != expected:
                raise SearchStopped(f"flaky: {sha[:12]} was judged {first}, then {again}")
        outcome.culprit = commits[search.hi]
    except SearchStopped as stop:
        outcome.stopped = str(stop)
    outcome.seconds = now() - started
    return outcome
