"""How the engine ends a canary (a fake target stands for Docker): failed, the release is rolled
back and its commits reverted; stuck for lack of traffic, the deploy fails and nothing is marked
bad or reverted, saying so. The target is handed the policy and a way to read people's commands."""

from __future__ import annotations

from bot.canary.errors import CanaryFailedError, CanaryStuckError
from bot.domain import DeployState
from tests.engine.world import CONFIG, World

S = DeployState
CANARY = CONFIG.replace("    replicas: 2\n", """    replicas: 2
    strategy: canary
    canary: {steps: [{weight: 10, pause: 1s}], analysis: {interval: 1s, min_requests: 20}}
""")


def ship_good(w: World) -> str:
    good = w.merge({"app.py": "v1"})
    w.ship(good)
    assert w.state(good) is S.LIVE
    return good


def test_a_failed_canary_is_rolled_back_and_reverted(tmp_path):
    w = World(tmp_path, CANARY)
    good = ship_good(w)
    sha = w.merge({"app.py": "v2"})
    plans = []

    def canary(plan):
        plans.append(plan)
        if plan.sha == sha:
            raise CanaryFailedError("canary failed at step 1 (10%): canary 5xx 20.0% (20/100) vs baseline 0.0% "
                                    "(0/900), p < 0.001: fail")

    w.target.hooks["roll_out"] = canary
    w.ship(sha)

    d = w.deploy(sha)
    assert d.state == "reverted" and "canary 5xx 20.0% (20/100)" in d.reason
    assert w.live() == w.head() != sha and w.git.pushes  # the revert, same tree as the good release
    [first] = [p for p in plans if p.sha == sha]
    assert first.canary is not None and first.canary.steps[0].weight == 10 and first.control is not None
    assert first.control() is None  # no command given
    restore = [p for p in plans if p.sha == good][-1]
    assert restore.control is None  # restoring the previous release is never a canary


def test_a_canary_that_cannot_be_judged_fails_without_a_revert(tmp_path):
    w = World(tmp_path, CANARY)
    good = ship_good(w)
    sha = w.merge({"app.py": "v2"})

    def stuck(plan):
        if plan.sha == sha:
            raise CanaryStuckError("the canary could not be judged after 3 inconclusive intervals at step 1 (10%); "
                                   "nothing is reverted, the previous release still serves")

    w.target.hooks["roll_out"] = stuck
    w.ship(sha)

    d = w.deploy(sha)
    assert d.state == "failed" and d.reason.startswith("canary: the canary could not be judged")
    assert w.live() == good and w.git.pushes == [] and w.head() == sha  # master ahead, nothing reverted
    svc = w.store.service("shop")
    assert all(r.status != "bad" for r in w.store.releases(svc.id, "production"))
