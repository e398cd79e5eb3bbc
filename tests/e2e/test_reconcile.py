"""Nothing is lost when webhooks are: the reconciler (what the worker runs every
MAINLINE_RECONCILE_SECONDS) re-derives the work from the production branch and the inbox.
On the local GitHub stand-in, Docker, the registry and HAProxy."""

from __future__ import annotations

import dataclasses

import pytest


def pending(world) -> list[tuple[str, tuple]]:
    return [(task.name, tuple(task.args)) for task in world.wired.queue.huey.pending()]


@pytest.mark.docker
def test_a_merge_whose_webhooks_never_arrived_goes_live_on_the_next_reconcile(world):
    world.first_release()
    number, v2 = world.merge_pr("octocat/v2", world.app_files("v2"), "Add the v2 page")
    lost = world.lose_webhooks()
    assert {"push", "pull_request"} <= {d.event for d in world.sandbox.deliveries if d.id in lost}
    assert v2 not in world.deploys()

    assert world.wired.pipeline.reconcile() >= 1
    world.wired.pipeline.reconcile()  # a second pass finds the merge already queued

    deploy = world.deploys()[v2]
    assert (deploy["state"], deploy["requested_by"]) == ("queued", "reconciler")
    assert [d["sha"] for d in world.wired.pipeline.deploys(world.service, limit=50)].count(v2) == 1
    world.work()
    assert world.deploys()[v2]["state"] == "live"
    assert world.serves() == f"{world.service} v2"
    status = world.status()
    assert status["in_sync"] is True and status["live"]["sha"] == v2 == world.head()
    # The PR hears about it like any other: the bot found it from the merge commit.
    assert any("Live in production" in body for body in world.replies(number))


def test_a_recorded_delivery_whose_task_was_lost_is_processed_on_a_later_reconcile(world):
    sha = world.sandbox.push_commit(world.repo, "master", {"CHANGELOG.md": "v1\n"}, "Start the changelog")
    [push] = world.relay()
    world.wired.process_delivery(push)
    number = world.open_pr("feature/search", {"NOTES.md": "search\n"}, "Add search")
    comment_id, delivery = world.comment(number, "/lock incident 42", "octocat")
    assert world.post(delivery).status_code == 202
    world.wired.queue.huey.flush()  # the worker died, and its queue with it: the task is gone

    world.wired.pipeline.reconcile()  # too recent: it may still be on its way
    assert ("process_delivery", (delivery.id,)) not in pending(world)
    world.wired.pipeline.opts = dataclasses.replace(world.wired.pipeline.opts, redeliver_after=0)
    world.wired.pipeline.reconcile()
    assert ("process_delivery", (delivery.id,)) in pending(world)
    [task] = [t for t in world.wired.queue.huey.pending() if t.name == "process_delivery"]
    world.wired.queue.huey.execute(task)

    assert world.status()["locked"] == {"by": "github:octocat", "reason": "incident 42"}
    assert world.wired.store.delivery(delivery.id).processed_at is not None
    assert world.reactions(comment_id) == ["+1"]
    assert world.deploys()[sha]["state"] == "queued"  # held by the lock, as the command asked
