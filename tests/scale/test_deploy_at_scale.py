"""One deploy end to end at scale: a merge webhook recorded in PostgreSQL by the web app, taken by a
real `mainline worker` process that drives it through the Redis queue, rolled out on Docker behind
HAProxy, live. The worker is SIGKILLed mid-rollout of the next release, and a new one finishes it once."""

from __future__ import annotations

import pytest

from bot.app import create_app
from bot.errors import NotFoundError
from bot.pipeline import wait_until
from tests.e2e.test_rollout_story import app_for, cleanup, containers, kill_when, settle, states, worker  # noqa: F401
from tests.handlers.test_github_webhook import merged_pr, post, publish

pytestmark = pytest.mark.docker


def service_known(wired, service: str, timeout: float = 30) -> None:
    """Wait for the worker to have taken the first delivery and registered the service."""
    def known() -> bool:
        try:
            return wired.store.service(service) is not None
        except NotFoundError:
            return False

    assert wait_until(known, timeout, 0.1), f"the worker never registered {service} from the webhook"


def test_merged_pr_goes_live_through_a_worker_process_on_postgresql_and_redis(tmp_path, settings, open_wired,
                                                                             cleanup):  # noqa: F811
    web = open_wired("web")
    client = create_app(settings, web).test_client()
    app = app_for(tmp_path, cleanup, "scale", replicas=2, bake="1s")
    publish(app.repo, settings)  # where the configured GitHub base says the payload's repository is
    proc = worker(settings)
    try:
        v1 = app.release("v1")
        assert post(client, "pull_request", merged_pr(app.repo, v1, number=1), delivery="d-v1").status_code == 202
        service_known(web, app.service)
        settle(web, app.service, v1, "live", timeout=90)
        assert app.serves() == f"{app.service} v1"

        v2 = app.release("v2")
        assert post(client, "pull_request", merged_pr(app.repo, v2, number=2), delivery="d-v2").status_code == 202
        kill_when(web, app.service, v2, proc, lambda e: e["data"].get("step") == "replica_healthy")
        assert states(web, app.service)[v2] == "rolling_out"
        proc = worker(settings)
        deploy = settle(web, app.service, v2, "live", timeout=90)
    finally:
        proc.kill()
        proc.wait()
    assert [e["kind"] for e in deploy["events"]].count("live") == 1
    assert app.serves() == f"{app.service} v2"
    running = [c for c in containers(app.service) if c.status == "running"]
    assert sorted(c.labels["mainline.sha"] for c in running) == [v2, v2], "an orphaned container survived"
    assert web.store.unprocessed_deliveries(older_than=0) == []
    env = web.store.environment(web.store.service(app.service).id, "production")
    assert env.lease_owner is None
