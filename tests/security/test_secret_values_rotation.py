"""Secret values and their references, through the public surface on real Docker and HAProxy.

A rotated secret reaches the containers by `mainline deploy SERVICE --restart` (the same sha,
its containers replaced one at a time), and nothing shows the value. A reference that cannot be
resolved fails the deploy before anything changes: production keeps serving, master is not
reverted, and the reason names the reference only."""

from __future__ import annotations

import docker
import pytest

from bot.infra.targets.docker.haproxy import HAProxy
from bot.settings import load_settings
from tests.conftest import SECRET
from tests.e2e.test_rollout_story import App, free_port

pytestmark = pytest.mark.docker

OLD, NEW = "rotate-me-old-value-1111", "rotated-new-value-2222"


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "secrets").mkdir()
    return load_settings(database_url=f"sqlite:///{tmp_path}/mainline.db", queue_url=f"sqlite:///{tmp_path}/queue.db",
                         state_dir=tmp_path / "state", github_webhook_secret=SECRET, lease_seconds=5,
                         reconcile_seconds=1, secrets_dir=tmp_path / "secrets")


class SecretApp(App):
    def release(self, version: str, mode: str = "healthy") -> str:
        super().release(version, mode)
        text = (self.repo.work / ".github" / "deploy.yml").read_text()
        text = text.replace('listen: "127.0.0.1:', 'secrets: {API_KEY: "file:api-key"}, listen: "127.0.0.1:')
        return self.repo.commit(f"{version}: with a secret", {".github/deploy.yml": text})


def env_of(service: str) -> list[list[str]]:
    found = docker.from_env().containers.list(filters={"label": f"mainline.service={service}"})
    return [c.attrs["Config"]["Env"] for c in found]


def test_a_rotated_secret_goes_out_by_restart_and_a_missing_one_changes_nothing(tmp_path, settings, wired,
                                                                                 mainline):
    service = f"sec{free_port()}"
    app = SecretApp(tmp_path / service, service, free_port(), replicas=1, bake="0.5s")
    secret = settings.secrets_dir / "api-key"
    secret.write_text(OLD)
    try:
        v1 = app.release("v1")
        wired.pipeline.request(app.request(v1))
        wired.pipeline.drive(service, "production")
        assert {d["sha"]: d["state"] for d in wired.pipeline.deploys(service)} == {v1: "live"}
        assert [f"API_KEY={OLD}" in env for env in env_of(service)] == [True]

        secret.write_text(NEW)
        result = mainline("deploy", service, "--restart")
        assert result.exit_code == 0 and v1[:12] in result.output, result.output
        wired.pipeline.drive(service, "production")
        assert [d["state"] for d in wired.pipeline.deploys(service)] == ["live"]
        assert [f"API_KEY={NEW}" in env for env in env_of(service)] == [True]
        assert app.serves() == f"{service} v1"

        secret.unlink()
        v2 = app.release("v2")
        wired.pipeline.request(app.request(v2))
        wired.pipeline.drive(service, "production")
        failed = next(d for d in wired.pipeline.deploys(service) if d["sha"] == v2)
        assert failed["state"] == "failed" and "file:api-key" in failed["reason"], failed
        assert app.serves() == f"{service} v1" and app.head() == v2  # production unchanged, master not reverted
        assert [f"API_KEY={NEW}" in env for env in env_of(service)] == [True]
        shown = str(wired.pipeline.deploys(service, limit=10)) + str(
            [e.message + str(e.data) for e in wired.store.events_since(0, limit=1000, service=service)])
        assert OLD not in shown and NEW not in shown
    finally:
        for c in docker.from_env().containers.list(all=True, filters={"label": f"mainline.service={service}"}):
            c.remove(force=True)
        HAProxy(settings.state_dir, service, "production", f"127.0.0.1:{app.port}").stop()
