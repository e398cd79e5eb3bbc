"""A step is run again after a crash with one effect, and a driver that lost its lease writes
nothing: the two promises that make a killed worker harmless."""

from __future__ import annotations

import pytest

from bot.domain import DeployState
from tests.engine.world import World

S = DeployState


class Crash(BaseException):
    """The worker dies: not an error a step records, it ends the process mid-step."""


def crash_once_leaving(w: World, state: DeployState) -> list[bool]:
    """Make the first transition out of `state` never get applied, as if the worker died
    between the step's work and its write."""
    transitions, real, crashed = w.pipeline.transitions, w.pipeline.transitions.apply, list[bool]()

    def apply(deploy, token, move):
        if not crashed and w.store.deploy(deploy.id).state == state.value and move.target is not state:
            crashed.append(True)
            raise Crash(f"killed in {state.value}")
        real(deploy, token, move)

    transitions.apply = apply  # type: ignore[method-assign]
    return crashed


def drive_through_crash(w: World) -> None:
    with pytest.raises(Crash):
        w.drive()
    w.drive()  # the reconciler's next pass, on another worker


@pytest.mark.parametrize("state", [S.GATING, S.BUILDING, S.ROLLING_OUT, S.VERIFYING])
def test_a_forward_step_replayed_after_a_crash_has_one_effect(tmp_path, state):
    w = World(tmp_path)
    sha = w.merge({"app.py": "v1"})
    crashed = crash_once_leaving(w, state)
    w.push(sha)
    drive_through_crash(w)
    assert crashed and w.state(sha) is S.LIVE
    assert w.builder.builds == [w.image(sha)]  # built once
    assert w.target.rollouts == [w.image(sha)]  # rolled out once
    svc = w.store.service("shop")
    assert [r.sha for r in w.store.releases(svc.id, "production")] == [sha]  # one release
    assert [e.kind for e in w.store.events(w.deploy(sha).id)].count("live") == 1


@pytest.mark.parametrize("state", [S.ROLLING_BACK, S.ROLLED_BACK, S.REVERTING])
def test_a_rollback_or_revert_step_replayed_after_a_crash_has_one_effect(tmp_path, state):
    w = World(tmp_path)
    good = w.merge({"app.py": "v1"})
    w.ship(good)
    bad = w.merge({"app.py": "v2 (broken)"})
    w.target.bad.add(w.image(bad))
    crashed = crash_once_leaving(w, state)
    w.push(bad)
    drive_through_crash(w)
    assert crashed and w.state(bad) is S.REVERTED
    assert len(w.git.pushes) == 1  # one revert on master
    assert w.target.rollouts == [w.image(good), w.image(bad), w.image(good)]  # restored once
    head = w.head()
    assert w.state(head) is S.LIVE and w.live() == head


def test_a_driver_that_lost_its_lease_writes_nothing(tmp_path):
    w = World(tmp_path)
    good = w.merge({"app.py": "v1"})
    w.ship(good)
    sha = w.merge({"app.py": "v2"})
    svc = w.store.service("shop")
    # Mid-bake, the lease expires and another worker takes the environment.
    thief: list[int] = []
    w.target.hooks["verify"] = lambda plan: thief.append(w.store.steal_lease(svc.id, "production"))
    w.push(sha)
    w.drive()
    assert w.state(sha) is S.VERIFYING  # the stale driver's LIVE was refused
    assert w.live() == good  # and so was its release
    assert "live" not in [e.kind for e in w.store.events(w.deploy(sha).id)]
    del w.target.hooks["verify"]
    w.store.release_lease(w.store.environment(svc.id, "production").id, thief[0])  # the other worker died too
    w.drive()  # the next driver finishes it
    assert w.state(sha) is S.LIVE and w.live() == sha
