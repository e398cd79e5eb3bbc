"""The Redis queue carries work from the process that asks for a deploy to the worker that runs it."""

from __future__ import annotations

from bot.domain import DeployRequest


def request(repo, sha: str) -> DeployRequest:
    return DeployRequest(repo="acme/web", clone_url=repo.clone_url, ref="refs/heads/master", sha=sha)


def test_a_requested_deploy_reaches_another_processs_worker_through_redis(open_wired, local_repo):
    producer, consumer = open_wired("web"), open_wired("worker")
    assert type(producer.queue.huey).__name__ == "RedisHuey"
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    [created] = producer.pipeline.request(request(local_repo, sha))
    assert created["state"] == "queued"
    producer.pipeline.lock("web", "production", "octocat", "incident 42")  # the worker's drive stops at the gate
    assert consumer.queue.pending() == 1

    task = consumer.queue.huey.dequeue()
    assert (task.name, task.args) == ("drive", ("web", "production"))
    consumer.queue.huey.execute(task)

    assert consumer.queue.pending() == 0
    [deploy] = producer.pipeline.deploys("web")
    assert (deploy["sha"], deploy["state"]) == (sha, "queued")
    assert "incident 42" in deploy["blocked_by"]


def test_each_enqueued_drive_is_taken_by_exactly_one_of_two_workers(open_wired, local_repo):
    producer = open_wired("web")
    workers = [open_wired("worker"), open_wired("worker")]
    for n in range(3):
        producer.pipeline.request(request(local_repo, local_repo.commit(f"change {n}")))
    assert producer.queue.pending() == 3
    taken = []
    while (task := workers[len(taken) % 2].queue.huey.dequeue()) is not None:
        taken.append(task.id)
    assert len(taken) == len(set(taken)) == 3
    assert all(w.queue.pending() == 0 for w in workers)
