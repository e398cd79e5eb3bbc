"""A person's search (`mainline bisect`, `/bisect`) of a release that was reverted in full: the
worker runs it; on a culprit the other commits are put back and ship; otherwise nothing changes."""

from __future__ import annotations

import pytest

from bot.culprit.manual import request_bisect
from bot.domain import DeployState
from bot.errors import MainlineError, NotFoundError, TransientError
from tests.engine.test_culprit import batch, plan
from tests.engine.world import CLONE, World

S = DeployState


def reverted_in_full(w: World, n: int, bad: int) -> list[str]:
    """A release whose search could not run (Docker was down): all of it reverted."""
    shas = batch(w, n, bad)
    w.trial.faults[w.image(shas[0] if bad else shas[-1])] = TransientError("the Docker engine is not answering")
    w.trial.faults[w.image(shas[(n - 1) // 2])] = TransientError("the Docker engine is not answering")
    w.drive()
    assert plan(w, shas[-1])["stopped"].startswith("could not bisect")
    w.trial.faults.clear()
    return shas


def test_the_innocent_commits_are_put_back_and_ship(tmp_path):
    w = World(tmp_path)
    shas = reverted_in_full(w, 4, 2)
    asked = request_bisect(w.pipeline, "shop", "production", "github:octocat")
    assert asked["commits"] == 4 and asked["bad"] == shas[-1]
    assert w.state(shas[-1]) is S.BISECTING
    w.drive()
    assert w.state(shas[-1]) is S.REVERTED and plan(w, shas[-1])["culprit"] == shas[2]
    head = w.head()
    assert w.live() == head
    for i in range(4):
        assert w.git.read_file(CLONE, head, f"page{i}.txt") == (None if i == 2 else f"PR {i}")
    assert plan(w, shas[-1])["reapplied"] == [shas[0], shas[1], shas[3]]


def test_a_person_names_the_range(tmp_path):
    w = World(tmp_path)
    shas = reverted_in_full(w, 4, 3)
    request_bisect(w.pipeline, "shop", "production", "github:octocat", good=shas[1][:10], bad=shas[-1][:10])
    w.drive()
    data = plan(w, shas[-1])
    assert data["culprit"] == shas[3] and data["innocent"] == [shas[2]]


def test_a_search_that_stops_changes_nothing(tmp_path):
    w = World(tmp_path)
    shas = reverted_in_full(w, 2, 1)
    head = w.head()
    w.trial.script[w.image(shas[1])] = ["good"]  # the release failed; beside production it looks fine: flaky
    request_bisect(w.pipeline, "shop", "production", "github:octocat")
    w.drive()
    assert w.state(shas[-1]) is S.REVERTED and w.head() == head
    assert plan(w, shas[-1])["stopped"] == f"flaky: {shas[1][:12]} was judged bad, then good"


def test_nothing_to_search_is_said_plainly(tmp_path):
    w = World(tmp_path)
    batch(w, 2, 1)
    with pytest.raises(NotFoundError, match="no release of shop reverted in production"):
        request_bisect(w.pipeline, "shop", "production", "github:octocat")
    w.drive()  # bisected automatically: nothing left to ask
    with pytest.raises(MainlineError, match="already bisected"):
        request_bisect(w.pipeline, "shop", "production", "github:octocat")


def test_a_good_commit_outside_the_history_is_refused(tmp_path):
    w = World(tmp_path)
    shas = reverted_in_full(w, 2, 1)
    with pytest.raises(MainlineError, match="--good must be an earlier commit"):
        request_bisect(w.pipeline, "shop", "production", "github:octocat", good=shas[-1])
