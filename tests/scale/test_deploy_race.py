"""Two processes recording one sha at once (a worker's reconciler and another worker's intake)
make one deploy: the second sees the first's, instead of failing its whole reconcile pass."""

from __future__ import annotations

from sqlalchemy import event


def test_a_deploy_inserted_by_another_process_meanwhile_is_the_one_deploy(open_store, database_url):
    ours, theirs = open_store(database_url), open_store(database_url)
    ours.migrate()
    svc = ours.upsert_service("shop", "acme/shop", "https://github.com/acme/shop.git", "master")
    ours.environment(svc.id, "production")
    sha = "a" * 40
    made: list = []

    def meanwhile(session, flush_context, instances) -> None:
        if not made:  # between our read and our insert, the other process inserts and commits
            made.append(theirs.create_deploy(svc.id, "production", sha, "master", "reconciler"))

    event.listen(ours._sessions, "before_flush", meanwhile)
    row, new = ours.create_deploy(svc.id, "production", sha, "master", "github:octocat", pull_numbers=[7])
    assert made[0][1] is True, "the other process made the deploy"
    assert (row.id, new) == (made[0][0].id, False)
    assert ours.deploy(row.id).pull_numbers == [7]
    assert len(ours.deploys(svc.id, "production")) == 1


def test_a_service_registered_by_another_process_meanwhile_is_the_one_service(open_store, database_url):
    ours, theirs = open_store(database_url), open_store(database_url)
    ours.migrate()
    made: list = []

    def meanwhile(session, flush_context, instances) -> None:
        if not made:
            made.append(theirs.upsert_service("shop", "acme/shop", "https://github.com/acme/shop.git", "master"))

    event.listen(ours._sessions, "before_flush", meanwhile)
    row = ours.upsert_service("shop", "acme/shop", "https://github.com/acme/shop.git", "main", config_text="{}")
    assert row.id == made[0].id
    assert (ours.service("shop").branch, ours.service("shop").config_text) == ("main", "{}")
