"""The bisection itself (bot.culprit.search), pure: rounds, confirmation, and its bounds."""

from __future__ import annotations

from bot.culprit.search import BAD, GOOD, Limits, Verdict, rounds_needed, run
from tests.fakes import FakeClock


def judge_first_bad(commits: list[str], bad: int, clock: FakeClock | None = None):
    def judge(sha: str) -> Verdict:
        if clock is not None:
            clock.t += 60
        return Verdict(BAD if commits.index(sha) >= bad else GOOD)
    return judge


def test_the_first_bad_commit_is_found_in_log2_n_rounds():
    for n in (2, 3, 4, 5, 8, 16):
        commits = [f"{i:040x}" for i in range(n)]
        for bad in range(n):
            outcome = run(commits, judge_first_bad(commits, bad), Limits(max_rounds=10))
            assert outcome.culprit == commits[bad], (n, bad)
            assert outcome.search_rounds <= rounds_needed(n), (n, bad)


def test_the_time_budget_stops_the_search():
    clock = FakeClock()
    commits = [f"{i:040x}" for i in range(16)]
    outcome = run(commits, judge_first_bad(commits, 3, clock), Limits(max_rounds=10, budget=150), now=clock)
    assert outcome.culprit is None
    assert outcome.stopped == "the time budget of 150s ran out after 3 round(s)"


def test_one_commit_is_not_bisected():
    outcome = run(["a" * 40], judge_first_bad(["a" * 40], 0), Limits())
    assert outcome.culprit is None and outcome.rounds == []
