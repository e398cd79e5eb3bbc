"""The store on a real PostgreSQL: the schema migrates, and a deploy's lease fences stale writers."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect, text

from bot.domain import DeployState
from bot.errors import LeaseLostError

HEAD_REVISION = "0002"  # bot/infra/db/schema/versions: the newest migration

TABLES = {"services", "environments", "releases", "deploys", "deploy_events", "webhook_deliveries", "locks",
          "approvals", "chat_cards"}


def test_alembic_migration_builds_the_schema_on_postgresql_and_runs_again_as_a_no_op(open_store, database_url):
    store = open_store(database_url)
    store.migrate()
    store.migrate()  # a second process starting up migrates again: nothing to do
    assert store.engine.dialect.name == "postgresql"
    assert set(inspect(store.engine).get_table_names()) >= TABLES
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD_REVISION]


@pytest.fixture
def store(open_store, database_url):
    store = open_store(database_url)
    store.migrate()
    return store


@pytest.fixture
def env_id(store):
    service = store.upsert_service("web", "acme/web", "/tmp/web.git", "master")
    return store.environment(service.id, "production").id


def test_only_one_of_two_workers_takes_an_environments_lease(wired_pair, env_id):
    first, second = wired_pair
    token = first.store.acquire_lease(env_id, first.pipeline.owner, 30)
    assert token is not None
    assert second.store.acquire_lease(env_id, second.pipeline.owner, 30) is None


def test_concurrent_lease_attempts_have_exactly_one_winner(open_store, store, env_id):
    """Eight workers race for one environment's lease on PostgreSQL: one token, seven refusals."""
    workers = [open_store(store.url) for _ in range(8)]
    start = threading.Barrier(len(workers))
    tokens: list[int | None] = [None] * len(workers)

    def attempt(i: int) -> None:
        start.wait()
        tokens[i] = workers[i].acquire_lease(env_id, f"worker-{i}", 30)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [t for t in tokens if t is not None] == [1]


def test_a_stale_token_cannot_write_after_the_lease_changed_hands(store, env_id):
    service = store.service("web")
    deploy, created = store.create_deploy(service.id, "production", "a" * 40, "refs/heads/master", "octocat")
    assert created
    stale = store.acquire_lease(env_id, "worker-a", seconds=0.001)  # worker-a stalls past its lease
    fresh = store.acquire_lease(env_id, "worker-b", seconds=30)
    assert fresh == stale + 1
    store.update_deploy(deploy.id, fresh, state=DeployState.GATING)
    with pytest.raises(LeaseLostError):
        store.update_deploy(deploy.id, stale, state=DeployState.FAILED, reason="worker-a woke up")
    with pytest.raises(LeaseLostError):
        store.set_live(service.id, "production", "a" * 40, "127.0.0.1:5000/web:aaaa", deploy.id, stale)
    assert store.deploy(deploy.id).state == "gating"
    assert store.live_release(service.id, "production") is None
    assert not store.renew_lease(env_id, stale, 30)


def test_workers_meeting_a_new_environment_at_once_share_one_row(open_store, store):
    """Several workers see a service's new environment at the same moment: one row, one id for all."""
    service = store.upsert_service("api", "acme/api", "/tmp/api.git", "master")
    workers = [open_store(store.url) for _ in range(8)]
    start = threading.Barrier(len(workers))
    ids: list[int | None] = [None] * len(workers)
    errors: list[Exception] = []

    def meet(i: int) -> None:
        start.wait()
        try:
            ids[i] = workers[i].environment(service.id, "staging").id
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=meet, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(set(ids)) == 1 and [e.name for e in store.environments(service.id)] == ["staging"]


def test_web_and_worker_starting_together_migrate_once(open_store, database_url):
    """Procfile starts both at once: each runs the migration; neither may fail on the other's tables."""
    stores = [open_store(database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def migrate(store) -> None:
        try:
            store.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with stores[0].engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD_REVISION]
