"""GitHub webhooks at scale: two web processes' worth of request threads on one PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.infra.db.models import DeliveryRow, DeployRow
from tests.handlers.test_github_webhook import github_web_url, merged_pr, post, publish

THREADS_PER_APP = 6


@pytest.fixture
def settings(settings, tmp_path):
    """The scale settings, with a file:// GitHub base that `publish` serves the repository from."""
    return settings.model_copy(update={"github_web_url": github_web_url(tmp_path)})


def test_one_delivery_posted_at_once_from_many_threads_is_recorded_once(open_wired, settings, local_repo):
    """GitHub redelivers while the first attempt is still in flight, to two web processes: exactly
    one request is answered 202 and records the delivery, every other one is 200 duplicate."""
    apps = [create_app(settings, open_wired("web")) for _ in range(2)]
    payload = merged_pr(local_repo, local_repo.commit("Merge pull request #7 from octocat/feature"))
    clients = [app.test_client() for app in apps for _ in range(THREADS_PER_APP)]
    start = threading.Barrier(len(clients))
    answers: list = [None] * len(clients)

    def send(i: int) -> None:
        start.wait()
        response = post(clients[i], "pull_request", payload, delivery="same-delivery")
        answers[i] = (response.status_code, response.json)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(code for code, _ in answers) == [200] * (len(clients) - 1) + [202]
    assert [body for code, body in answers if code == 202] == [{"queued": "same-delivery"}]
    assert all(body == {"duplicate": "same-delivery"} for code, body in answers if code == 200)
    store = open_wired("worker").store
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(DeliveryRow)) == 1
    assert store.unprocessed_deliveries(older_than=0) == ["same-delivery"]


def test_distinct_deliveries_from_many_threads_are_all_recorded(wired, settings, local_repo):
    client_app = create_app(settings, wired)
    payload = merged_pr(local_repo, local_repo.commit("Merge pull request #7 from octocat/feature"))
    codes: dict[str, int] = {}

    def send(i: int) -> None:
        codes[f"d-{i}"] = post(client_app.test_client(), "pull_request", payload, delivery=f"d-{i}").status_code

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert set(codes.values()) == {202} and len(codes) == 20
    assert sorted(wired.store.unprocessed_deliveries(older_than=0)) == sorted(codes)


def test_two_workers_processing_one_delivery_queue_one_deploy(open_wired, settings, local_repo):
    publish(local_repo, settings)  # the bot clones from its configured GitHub base, never the payload's URL
    web = open_wired("web")
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    response = post(create_app(settings, web).test_client(), "pull_request", merged_pr(local_repo, sha),
                    delivery="d-merge")
    assert response.status_code == 202
    workers = [open_wired("worker") for _ in range(2)]
    start = threading.Barrier(len(workers))

    def process(worker) -> None:
        start.wait()
        worker.process_delivery("d-merge")

    threads = [threading.Thread(target=process, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with web.store.session() as s:
        deploys = s.execute(select(DeployRow.environment, DeployRow.sha, DeployRow.state)).all()
    assert deploys == [("production", sha, "queued")]
    assert web.store.delivery("d-merge").outcome.startswith("1 deploy(s) for #7")
    assert web.store.unprocessed_deliveries(older_than=0) == []
