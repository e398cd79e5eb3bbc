"""Culprit finding on the fakes: a failed release of several PRs is bisected once production is
safe; only the PR that broke it is reverted, the rest ship. When the search cannot be trusted
(flaky, inconclusive, out of rounds, the machinery failing) the whole release is reverted, as
before, saying why."""

from __future__ import annotations

import math

import pytest

from bot.culprit.telling import CulpritReporter
from bot.domain import DeployState
from bot.errors import TransientError
from tests.engine.scenarios import forward
from tests.engine.world import CLONE, CONFIG, REPO, World
from tests.fakes import Pull

S = DeployState


def batch(w: World, n: int, bad: int, files: dict[int, dict] | None = None) -> list[str]:
    """`n` PRs merged within seconds, the one at index `bad` broken; returns their merge shas."""
    forward(w)
    shas = []
    for i in range(n):
        changes = (files or {}).get(i, {f"page{i}.txt": f"PR {i}"})
        sha = w.merge(changes, f"Merge pull request #{10 + i} from octocat/pr{i}")
        w.github.add_pull(REPO, Pull(10 + i, f"PR {i}", f"dev{i}", merge_commit_sha=sha))
        w.push(sha, pull_numbers=(10 + i,))  # its webhook; nothing drives until all are in: they coalesce
        shas.append(sha)
    w.trial.bad.update(w.image(sha) for sha in shas[bad:])  # every commit that carries the bad PR is bad
    w.target.bad.add(w.image(shas[-1]))  # the release fails: it carries the bad PR
    return shas


def rounds(w: World, sha: str) -> list[dict]:
    return [e.data for e in w.store.events(w.deploy(sha).id) if e.kind == "bisect"]


def plan(w: World, sha: str) -> dict:
    return next(e.data for e in reversed(w.store.events(w.deploy(sha).id)) if e.kind == "culprit")


def reverted_commits(w: World) -> list[str]:
    marker = "This reverts commit "
    head = w.head()
    return [line.split(marker)[1].rstrip(".") for c in w.git.commits.values() if w.git.is_ancestor(CLONE, c.sha, head)
            for line in c.message.splitlines() if line.startswith(marker)]


@pytest.mark.parametrize(("n", "bad"), [(n, bad) for n in (2, 4, 8) for bad in range(n)])
def test_only_the_bad_pr_is_reverted_and_the_rest_ship(tmp_path, n, bad):
    w = World(tmp_path)
    shas = batch(w, n, bad)
    w.drive()
    assert w.state(shas[-1]) is S.REVERTED
    assert reverted_commits(w) == [shas[bad]]
    head = w.head()
    assert w.live() == head and w.target.serving[("shop", "production")] == w.image(head)
    for i in range(n):
        assert w.git.read_file(CLONE, head, f"page{i}.txt") == (None if i == bad else f"PR {i}")
    found = rounds(w, shas[-1])
    search = [r for r in found if not r["confirm"]]
    assert len(search) <= math.ceil(math.log2(n))
    assert all({"round", "sha", "verdict"} <= set(r) for r in found)
    assert plan(w, shas[-1])["culprit"] == shas[bad]


def test_everyone_is_told_the_right_thing(tmp_path):
    w = World(tmp_path)
    w.pipeline.ctx.w.reporters.append(CulpritReporter(w.github, w.store, w.git))
    shas = batch(w, 3, 1)
    w.drive()
    bad = w.deploy(shas[-1])
    assert bad.pull_numbers == [11]  # the reverted deploy now names only the culprit's PR
    [culprit] = w.github.comments[(REPO, 11)].values()
    assert "This PR broke production and was reverted" in culprit
    assert f"round 1: {shas[0][:12]} judged good" in culprit  # the evidence of every round
    assert f"round 2: {shas[1][:12]} judged bad" in culprit
    for innocent in (10, 12):
        [told] = w.github.comments[(REPO, innocent)].values()
        assert "Held back by a bad release in the same batch; now live" in told and w.head()[:12] in told
    story = next(n for n in w.chat.notices if n.deploy_id == bad.id and n.state == "reverted").data["story"]
    assert any(line.startswith(f"culprit: {shas[1][:12]} (#11)") for line in story)
    assert any(line.startswith("held back") and "#10" in line and "#12" in line for line in story)
    head = w.deploy(w.head())
    assert head.state == "live" and sorted(head.pull_numbers) == [10, 12]
    rounds_told = [n.message for n in w.chat.notices if n.deploy_id == bad.id and n.state == "bisecting"]
    assert any(m.startswith("round 1: ") for m in rounds_told)  # each round reaches Slack's thread


def test_a_flaky_candidate_stops_the_search_and_the_whole_release_is_reverted(tmp_path):
    w = World(tmp_path)
    shas = batch(w, 4, 1)
    w.trial.script[w.image(shas[1])] = ["bad", "good"]  # judged twice, two answers
    w.drive()
    assert w.state(shas[-1]) is S.REVERTED
    assert plan(w, shas[-1])["stopped"].startswith(f"flaky: {shas[1][:12]} was judged bad, then good")
    assert sorted(reverted_commits(w)) == sorted(shas)
    good = w.git.commits[shas[0]].parents[0]
    assert w.live() == w.head() and w.target.serving[("shop", "production")] == w.image(good)


def test_the_tip_judged_good_beside_production_is_flaky(tmp_path):
    w = World(tmp_path)
    shas = batch(w, 2, 1)
    w.trial.bad.clear()  # the release failed, yet every candidate looks healthy
    w.drive()
    assert plan(w, shas[-1])["stopped"] == f"flaky: {shas[1][:12]} was judged bad, then good"
    assert sorted(reverted_commits(w)) == sorted(shas)


def test_an_inconclusive_round_reverts_the_whole_release_saying_why(tmp_path):
    w = World(tmp_path)
    shas = batch(w, 4, 3)
    w.trial.script[w.image(shas[1])] = ["inconclusive"]
    w.drive()
    data = plan(w, shas[-1])
    assert data["culprit"] is None and data["stopped"] == f"the round on {shas[1][:12]} was inconclusive"
    assert sorted(reverted_commits(w)) == sorted(shas)
    assert "inconclusive" in w.chat.notices[-1].message or any(
        "inconclusive" in line for n in w.chat.notices for line in n.data.get("story", []))


def test_an_infrastructure_failure_blames_no_one(tmp_path):
    w = World(tmp_path)
    shas = batch(w, 4, 0)
    w.trial.faults[w.image(shas[1])] = TransientError("the Docker engine is not answering")
    w.drive()
    data = plan(w, shas[-1])
    assert data["culprit"] is None
    assert data["stopped"] == "could not bisect: the Docker engine is not answering"
    assert sorted(reverted_commits(w)) == sorted(shas)
    assert w.deploy(shas[-1]).pull_numbers == [10, 11, 12, 13]  # every PR hears it, none is singled out


def test_a_candidate_that_does_not_build_blames_no_one(tmp_path):
    w = World(tmp_path)
    shas = batch(w, 4, 3)
    w.builder.broken.add(w.image(shas[1]))
    w.drive()
    assert plan(w, shas[-1])["stopped"].startswith(f"could not bisect: building {shas[1][:12]} failed")
    assert sorted(reverted_commits(w)) == sorted(shas)


def test_max_rounds_bounds_the_search(tmp_path):
    w = World(tmp_path, CONFIG + "culprit: {mode: shadow, max_rounds: 2}\n")
    shas = batch(w, 8, 5)
    w.drive()
    assert len(rounds(w, shas[-1])) == 2
    assert plan(w, shas[-1])["stopped"] == "max_rounds (2) reached with 2 commits still in doubt"
    assert sorted(reverted_commits(w)) == sorted(shas)


def test_a_revert_that_conflicts_with_a_later_pr_takes_that_pr_with_it(tmp_path):
    """PR 1 (the culprit) and PR 2 both edit app.py; PR 0 and PR 3 do not: reverting PR 1 alone
    would conflict with PR 2, so PR 2 is reverted too, and the revert says so."""
    w = World(tmp_path)
    w.pipeline.ctx.w.reporters.append(CulpritReporter(w.github, w.store, w.git))
    shas = batch(w, 4, 1, files={1: {"app.py": "v2 (broken)"}, 2: {"app.py": "v3", "page2.txt": "PR 2"}})
    w.drive()
    data = plan(w, shas[-1])
    assert data["culprit"] == shas[1]
    assert data["also"] == [{"sha": shas[2], "files": ["app.py"], "pulls": [12]}]
    assert reverted_commits(w) == [shas[2], shas[1]]  # newest first, in one go
    head = w.head()
    assert w.git.read_file(CLONE, head, "app.py") == "v1" and w.git.read_file(CLONE, head, "page2.txt") is None
    assert w.git.read_file(CLONE, head, "page0.txt") == "PR 0" and w.git.read_file(CLONE, head, "page3.txt") == "PR 3"
    reverted = w.deploy(shas[-1])
    assert reverted.pull_numbers == [11, 12]
    message = next(e.message for e in w.store.events(reverted.id) if e.kind == "culprit")
    why = f"{shas[2][:12]} (#12) is reverted too: reverting {shas[1][:12]} alone conflicts with it in app.py"
    assert why in message
    assert w.live() == head
    assert "This PR broke production and was reverted" in "".join(w.github.comments[(REPO, 11)].values())
    assert "reverting the culprit alone" not in "".join(w.github.comments[(REPO, 12)].values())
    assert "Reverted with the PR that broke production" in "".join(w.github.comments[(REPO, 12)].values())
    assert "Held back" in "".join(w.github.comments[(REPO, 10)].values())


def test_a_release_of_one_commit_is_reverted_without_a_search(tmp_path):
    w = World(tmp_path)
    shas = batch(w, 1, 0)
    w.drive()
    assert w.state(shas[0]) is S.REVERTED and w.trial.tried == []


@pytest.mark.parametrize(("block", "weights"), [("culprit: {weight: 7}\n", {7}), ("culprit: {mode: shadow}\n", {0})])
def test_candidates_take_users_requests_only_in_canary_mode(tmp_path, block, weights):
    w = World(tmp_path, CONFIG + block)
    shas = batch(w, 2, 1)
    w.drive()
    assert plan(w, shas[-1])["culprit"] == shas[1] and set(w.trial.weights) == weights
