"""Issue 19: a burst of merges never tears master and production apart.

On real Docker, HAProxy, the registry and git, behind the local GitHub stand-in (webhooks signed
and posted through the bot's intake). After each burst: one live release at master's newest
head, `in_sync` true, nothing rolled back, no revert (commit or pull request), every sha live or
superseded, and the shas between two live releases never rolled out on their own."""

from __future__ import annotations

import threading
import time

import docker
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.infra.targets.docker.target import DockerTarget
from bot.pipeline import wait_until
from tests.e2e import burst_world
from tests.e2e.burst_world import (
    JUDGED,
    RacyDocker,
    assert_in_sync,
    carries,
    on_pull_opened,
    on_roll_out,
)

make_world = burst_world.make_world  # the fixture

pytestmark = pytest.mark.docker


def test_20_pushes_within_seconds_coalesce_and_the_newest_head_goes_live(make_world):
    w = make_world()
    w.first_release()
    w.start_worker()
    landed = w.burst(20)
    w.wait_idle(90)
    w.stop_worker()
    assert_in_sync(w, landed, max_rollouts=3)
    assert w.status()["live"]["sha"] == landed[-1]


def test_100_pushes_within_seconds_coalesce_and_the_newest_head_goes_live(make_world):
    w = make_world()
    w.first_release()
    w.start_worker()
    started = time.monotonic()
    landed = w.burst(100)
    pushed = time.monotonic() - started
    w.wait_idle(120)
    print(f"100 pushes in {pushed:.1f}s; in sync after {time.monotonic() - started:.1f}s; "
          f"rolled out on their own: {len(w.rolled_out(landed))}")
    w.stop_worker()
    assert_in_sync(w, landed, max_rollouts=4)
    assert w.status()["live"]["sha"] == landed[-1]


# -- a property: any schedule of arrivals and of kill -9 of the worker ends in sync --------------------

STEPS = st.one_of(
    st.tuples(st.just("land"), st.integers(1, 6)),
    st.tuples(st.just("kill"), st.sampled_from(["gating", "building", "rolling_out", "verifying", "live"])),
    st.tuples(st.just("pause"), st.sampled_from([0.1, 0.5, 1.5])),
)
_worlds: dict[int, object] = {}


def kill_at(w, kind: str, since: str, timeout: float = 8) -> None:
    """SIGKILL the worker once a deploy recorded after `since` reaches `kind` (or after `timeout`)."""
    def reached() -> bool:
        return any(d["created_at"] > since and any(e["kind"] == kind for e in d["events"])
                   for d in w.deploys().values())

    wait_until(reached, timeout, 0.05)
    w.kill_worker()
    w.start_worker()


@settings(max_examples=3, deadline=None, phases=[Phase.explicit, Phase.generate], print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schedule=st.lists(STEPS, min_size=2, max_size=5).filter(lambda s: any(k == "land" for k, _ in s)))
def test_any_schedule_of_pushes_and_kill_9_of_the_worker_ends_with_the_newest_head_live(make_world, schedule):
    # One world for every example: each starts where the last ended, in sync.
    w = _worlds.get(id(make_world))
    if w is None:
        w = _worlds[id(make_world)] = make_world()
        w.first_release()
    since = w.status()["live"]["since"]
    w.start_worker()
    landed: list[str] = []
    for kind, arg in schedule:
        if kind == "land":
            landed += w.burst(arg, prefix="schedule")
        elif kind == "kill":
            kill_at(w, arg, since)
        else:
            time.sleep(arg)
    w.wait_idle(90)
    w.stop_worker()
    # A delivery the killed worker had claimed waits out its claim (minutes); its sha is in the
    # live release meanwhile. Every other sha has its deploy, live or superseded.
    pending = w.deliveries_claimed_by_the_dead()
    waiting = [sha for sha in landed if sha not in w.deploys()]
    head = w.head()
    assert all(carries(w, head, sha) for sha in waiting)
    assert len(waiting) <= len(pending), (waiting, pending)
    assert_in_sync(w, [sha for sha in landed if sha not in waiting],
                   max_rollouts=sum(1 for k, _ in schedule if k == "land") + 1)
    assert w.status()["live"]["sha"] == landed[-1]


# -- merges landing while a bad release is handled ----------------------------------------------------


@pytest.mark.parametrize("phase", ["rollout", "rollback", "revert"])
def test_merges_landing_during_a_bad_release_s_rollout_rollback_or_revert_are_kept_and_the_head_goes_live(
        make_world, phase):
    w = make_world()
    v1 = w.first_release()
    _, bad = w.merge_pr("hubot/health", w.app_files("v2", mode="unhealthy"), "Rework the health check",
                        author="hubot")
    w.relay()
    later: list[str] = []

    def land(when: bool) -> None:
        if when and not later:
            later.extend(w.land_now(2, merges=True))

    if phase == "rollout":
        on_roll_out(w, lambda plan: land(plan.sha == bad))
    elif phase == "rollback":
        on_roll_out(w, lambda plan: land(plan.sha == v1))
    else:  # after the revert pull request is opened, before the bot merges it
        on_pull_opened(w, lambda title: land(title.startswith("Revert")))
    w.drive_to_idle()

    assert len(later) == 2, f"the merges never landed during the {phase}"
    deploys, head = w.deploys(), w.head()
    assert deploys[bad]["state"] == "reverted", deploys[bad]
    [revert] = w.revert_pulls()
    assert revert.title == 'Revert "Rework the health check"' and revert.merged
    assert len(w.reverts_of(bad)) == 1, w.master_log()[:6]
    status = w.status()
    assert status["in_sync"] is True and status["live"]["sha"] == head == status["head"], status
    assert w.reverts_of(bad)[0] in w.git("rev-list", head).split(), "the newest head does not hold the revert"
    for sha in later:  # not lost: live inside the head
        assert deploys[sha]["state"] in ("live", "superseded"), deploys[sha]
        assert carries(w, head, sha), f"{sha[:12]}'s change is not in the live {head[:12]}"
    assert w.serves() == f"{w.service} v1"
    judged = {sha[:12] for sha, d in deploys.items() if d["state"] in JUDGED | {"failed"}}
    assert judged == {bad[:12]}
    assert len(w.running()) == 1
    assert w.duplicate_writes() == []


# -- Docker's races during a burst ---------------------------------------------------------------------


def test_a_docker_race_during_a_burst_is_retried_never_rolled_back_nor_reverted(make_world):
    w = make_world()
    v1 = w.first_release()
    racy = RacyDocker(docker.from_env(), victim_sha=v1)
    w.wired.pipeline.w.target_for._docker = DockerTarget(w.settings.state_dir, client=racy)
    landed: list[str] = []
    on_roll_out(w, lambda plan: None if landed[1:] else landed.extend(w.land_now(19)))
    landed.append(w.push("burst 0"))
    w.drive_to_idle()

    assert {"404", "vanished"} <= set(racy.seen), racy.seen
    assert_in_sync(w, landed, max_rollouts=2)
    assert w.status()["live"]["sha"] == landed[-1]


# -- one environment, one driver ------------------------------------------------------------------------


def test_a_second_queue_thread_of_the_same_worker_never_runs_the_step_in_flight(make_world):
    """A worker runs several queue threads, and every request of a burst queues a drive: while
    one thread rolls out, another thread's drive must find the environment taken."""
    w = make_world()
    w.first_release()
    rollouts: list[str] = []
    other: list[threading.Thread] = []

    def second_driver(plan) -> None:
        rollouts.append(plan.sha)
        if len(other) == 0:
            other.append(threading.Thread(target=w.wired.pipeline.drive, args=(w.service, "production")))
            other[0].start()
            other[0].join(timeout=60)

    on_roll_out(w, second_driver)
    sha = w.push("one change")
    w.drive_to_idle()
    assert rollouts == [sha], f"the rollout of {sha[:12]} ran {len(rollouts)} times, twice at once"
    deploy = w.deploys()[sha]
    assert deploy["state"] == "live" and [e["kind"] for e in deploy["events"]].count("rolling_out") == 1


# -- a late webhook -------------------------------------------------------------------------------------


def test_a_webhook_arriving_after_a_newer_sha_went_live_does_not_take_production_back(make_world):
    """GitHub may deliver late or out of order (and the reconciler redelivers a delivery a dead
    worker had claimed): an older sha of master must not be rolled out over a newer live one."""
    w = make_world()
    w.first_release()
    older = w.sandbox.push_commit(w.repo, "master", {"notes/older.txt": "older\n"}, "older")
    late = w.lose_webhooks()  # held back, delivered below
    newer = w.push("newer")
    w.drive_to_idle()
    assert w.status()["live"]["sha"] == newer

    for delivery in [d for d in w.sandbox.deliveries if d.id in late]:
        assert w.post(delivery).status_code == 202
    w.work()

    status = w.status()
    assert status["live"]["sha"] == newer and status["in_sync"] is True, status
    assert w.deploys()[older]["state"] in ("superseded", "live"), w.deploys()[older]
    assert w.rolled_out([older]) == [], f"{older[:12]} was rolled out over the newer {newer[:12]}"
    assert [c.labels["mainline.sha"] for c in w.running()] == [newer]
