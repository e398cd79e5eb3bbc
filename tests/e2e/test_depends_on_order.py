"""Several services merged together deploy in dependency order: `web` says `depends_on: [api]`,
so its merge waits, naming `api`, until api's merge is live in production; then it goes."""

from __future__ import annotations

import pytest
import requests

from bot.domain import DeployRequest
from bot.infra.targets.docker.haproxy import HAProxy
from sandbox.sample_app import write_sample_app
from tests.conftest import LocalRepo
from tests.e2e.test_rollout_story import containers, free_port, states

pytestmark = pytest.mark.docker

CONFIG = """\
service: {service}
branch: master
environments:
  production: {{target: docker, auto_deploy: true, replicas: 1, listen: "127.0.0.1:{port}"}}
health: {{path: /health, interval: 0.3s, failures: 3, bake: 1s, timeout: 20s}}
depends_on: [{deps}]
rollback: {{auto: true, revert: push}}
"""


@pytest.fixture
def two_services(tmp_path, settings):
    made = {}
    for name in ("api", "web"):
        service = f"dep{name}{free_port()}"
        (tmp_path / name).mkdir()
        made[name] = (service, LocalRepo(tmp_path / name, service=service), free_port())
    yield made
    for service, _, port in made.values():
        for c in containers(service):
            c.remove(force=True)
        HAProxy(settings.state_dir, service, "production", f"127.0.0.1:{port}").stop()


def release(service: str, repo: LocalRepo, port: int, deps: str) -> str:
    write_sample_app(repo.work, f"{service} v1", listen=f"127.0.0.1:{port}")
    repo.write(".github/deploy.yml", CONFIG.format(service=service, port=port, deps=deps))
    return repo.commit(f"Merge pull request #1 from octocat/{service}")


def test_a_service_waits_for_the_service_it_depends_on(tmp_path, wired, two_services):
    (api, api_repo, api_port), (web, web_repo, web_port) = two_services["api"], two_services["web"]
    api_sha = release(api, api_repo, api_port, "")
    web_sha = release(web, web_repo, web_port, api)
    # Both merges land together; the dependent one is driven first.
    wired.pipeline.request(DeployRequest(f"acme/{web}", web_repo.clone_url, "refs/heads/master", web_sha))
    wired.pipeline.request(DeployRequest(f"acme/{api}", api_repo.clone_url, "refs/heads/master", api_sha))
    wired.pipeline.drive(web, "production")
    [row] = wired.pipeline.status(web)
    assert row["queue"][0]["state"] == "queued"
    assert row["queue"][0]["blocked_by"].startswith("depends-on:") and api in row["queue"][0]["blocked_by"]

    wired.pipeline.drive(api, "production")
    assert states(wired, api) == {api_sha: "live"}
    wired.pipeline.drive(web, "production")  # what the reconciler does every interval
    assert states(wired, web) == {web_sha: "live"}
    assert requests.get(f"http://127.0.0.1:{web_port}/", timeout=5).text.strip() == f"{web} v1"
