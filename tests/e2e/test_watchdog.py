"""The invariant watchdog (issue 19): master's head is live, queued, in flight, or held by a named
gate. When none holds for longer than MAINLINE_SYNC_BOUND_SECONDS, the reconciler says so (a
failing `mainline/sync` check run on the head, an `unsynced` event, `unsynced_since` in status)
and queues the head again, which then goes live. A lock is a named gate: nothing is said.
On the local GitHub stand-in, Docker, the registry and HAProxy, with a bound of one second."""

from __future__ import annotations

import time

import pytest

from bot.domain import DeployState, utcnow
from tests.e2e import burst_world
from tests.e2e.burst_world import BurstWorld

make_world = burst_world.make_world  # the fixture

pytestmark = pytest.mark.docker

BOUND = 1.0


def sync_checks(w: BurstWorld, sha: str) -> list:
    return [r for r in w.sandbox.repo(w.repo).check_runs.values() if r.head_sha == sha and r.name == "mainline/sync"]


def unsynced_events(w: BurstWorld) -> list:
    return [e for e in w.wired.store.events_since(0, limit=5000)
            if e.kind == "unsynced" and e.service == w.service]


def queued_head(w: BurstWorld) -> str:
    """A harmless push to master, delivered and recorded: its deploy is queued, not driven yet."""
    head = w.push("a change")
    w.take_deliveries()
    w.wired.queue.huey.flush()  # this test drives the worker's part by hand
    assert w.deploys()[head]["state"] == "queued"
    return head


def unaccount(w: BurstWorld, sha: str, state: DeployState, reason: str) -> None:
    """Put the head's deploy where no one will move it again, as a person or an old bug did."""
    row = next(d for d in w.wired.store.deploys(w.wired.store.service(w.service).id) if d.sha == sha)
    w.wired.store.update_deploy(row.id, None, state=state, reason=reason, finished_at=utcnow())


def past_the_bound() -> None:
    time.sleep(BOUND + 0.2)


def assert_quiet(w: BurstWorld, head: str) -> None:
    assert sync_checks(w, head) == [] and unsynced_events(w) == []


@pytest.mark.parametrize("state, reason", [
    (DeployState.FAILED, "failed by hand"),
    (DeployState.SUPERSEDED, "contains reverted 0123456789ab"),  # what issue 19's old rule did
])
def test_a_head_unaccounted_for_past_the_bound_is_said_loudly_then_queued_and_goes_live(make_world, state, reason):
    w = make_world(sync_bound_seconds=BOUND)
    w.first_release()
    head = queued_head(w)
    w.wired.pipeline.reconcile()
    past_the_bound()
    w.wired.pipeline.reconcile()
    assert_quiet(w, head)  # queued is accounted for, however long it waits
    assert w.status()["unsynced_since"] is None

    unaccount(w, head, state, reason)
    w.wired.pipeline.reconcile()
    assert w.status()["unsynced_since"] is not None  # seen, but within the bound: not said yet
    assert_quiet(w, head)
    past_the_bound()
    w.wired.pipeline.reconcile()

    [check] = sync_checks(w, head)
    assert (check.status, check.conclusion) == ("completed", "failure"), check
    assert "disagreed" in check.output.get("title", "") + check.output.get("summary", "")
    [event] = unsynced_events(w)
    assert head[:12] in event.data["cause"] and state.value in event.data["cause"]
    assert w.status()["unsynced_since"] is not None
    deploy = w.deploys()[head]
    assert deploy["state"] == "queued" and deploy["requested_by"] == "watchdog"

    w.drive_to_idle()
    w.wired.pipeline.reconcile()
    status = w.status()
    assert status["in_sync"] is True and status["live"]["sha"] == head and status["unsynced_since"] is None
    assert len(unsynced_events(w)) == 1  # said once, not on every pass
    assert w.serves() == f"{w.service} v1"


def test_the_sync_check_turns_green_once_the_head_is_live_again(make_world):
    """A red `mainline/sync` left on a head that is live would tell people the opposite of the truth."""
    w = make_world(sync_bound_seconds=BOUND)
    w.first_release()
    head = queued_head(w)
    unaccount(w, head, DeployState.FAILED, "failed by hand")
    w.wired.pipeline.reconcile()
    past_the_bound()
    w.wired.pipeline.reconcile()
    w.drive_to_idle()
    w.wired.pipeline.reconcile()

    assert w.status()["in_sync"] is True
    [check] = sync_checks(w, head)
    assert check.conclusion == "success", f"mainline/sync is still {check.conclusion} on the live head"


def test_a_head_held_by_a_lock_is_not_alarmed_and_is_once_unlocked(make_world):
    w = make_world(sync_bound_seconds=BOUND)
    w.first_release()
    w.wired.pipeline.lock(w.service, "production", "github:octocat", "incident 42")
    head = queued_head(w)
    unaccount(w, head, DeployState.FAILED, "failed by hand")
    w.wired.pipeline.reconcile()
    past_the_bound()
    w.wired.pipeline.reconcile()
    assert_quiet(w, head)
    assert w.status()["unsynced_since"] is None and w.deploys()[head]["state"] == "failed"

    w.wired.pipeline.unlock(w.service, "production", "github:octocat")
    w.wired.pipeline.reconcile()
    assert_quiet(w, head)
    past_the_bound()
    w.wired.pipeline.reconcile()
    assert len(sync_checks(w, head)) == 1 and len(unsynced_events(w)) == 1
    w.drive_to_idle()
    assert w.status()["live"]["sha"] == head


def test_a_head_that_went_live_but_no_longer_runs_is_alarmed_and_rolled_out_again(make_world):
    """Production was taken back under a live head (a late webhook of an older sha did it, see
    test_bursts): the watchdog's repair must roll the head out again, not only say so."""
    w = make_world(sync_bound_seconds=BOUND)
    v1 = w.first_release()
    head = w.push("a change")
    w.drive_to_idle()
    service = w.wired.store.service(w.service)
    older = w.wired.store.releases(service.id, "production")
    image = next(r.image for r in older if r.sha == v1)
    w.wired.store.set_live(service.id, "production", v1, image, None, None)

    w.wired.pipeline.reconcile()
    past_the_bound()
    w.wired.pipeline.reconcile()
    [event] = unsynced_events(w)
    assert "went live but" in event.data["cause"]
    assert w.deploys()[head]["state"] in ("queued", "live")
    w.drive_to_idle(rounds=2)
    status = w.status()
    assert status["in_sync"] is True and status["live"]["sha"] == head, status
