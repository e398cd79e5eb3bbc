"""The Docker target on the real engine, registry and HAProxy."""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest
import requests

from bot.errors import BuildError, RolloutError
from bot.infra.targets.docker.build import DockerBuilder
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.target import LABEL_SERVICE
from sandbox.sample_app import write_sample_app

pytestmark = pytest.mark.docker


def get(listen: str, path: str = "/") -> requests.Response:
    return requests.get(f"http://{listen}{path}", timeout=5)


def containers_of(docker_client, service):
    return docker_client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={service}"})


def test_build_pushes_once_then_skips_when_registry_has_the_tag(builder, tmp_path, events):
    write_sample_app(tmp_path, "webapp build-test")
    image = f"127.0.0.1:5000/mltest-build-{uuid.uuid4().hex[:8]}:{uuid.uuid4().hex}"
    assert not builder.image_exists(image)

    first, second = events(), events()
    assert builder.ensure_image(tmp_path, image, first) == image
    assert builder.ensure_image(tmp_path, image, second) == image

    assert "pushed" in first.steps
    assert second.steps == ["image_present"]
    assert builder.image_exists(image)


class BusyRegistryOnce:
    """The real Docker client, whose first push meets a registry answering 503."""

    def __init__(self, real):
        self.real, self.busy = real, 1

    def __getattr__(self, name):
        return getattr(self.real, name)

    @property
    def api(self):
        outer = self

        class Api:
            def __getattr__(self, name):
                return getattr(outer.real.api, name)

            def push(self, *args, **kwargs):
                if outer.busy:
                    outer.busy -= 1
                    return iter([{"status": "Preparing"},
                                 {"error": "received unexpected HTTP status: 503 Service Unavailable"}])
                return outer.real.api.push(*args, **kwargs)

        return Api()


def test_a_busy_registry_during_push_is_retried_and_the_image_lands(docker_client, tmp_path, events, caplog):
    write_sample_app(tmp_path, "webapp busy-registry")
    image = f"127.0.0.1:5000/mltest-busy-{uuid.uuid4().hex[:8]}:{uuid.uuid4().hex}"
    client = BusyRegistryOnce(docker_client)

    DockerBuilder(client=client).ensure_image(tmp_path, image, events())

    assert client.busy == 0
    assert DockerBuilder(client=docker_client).image_exists(image)
    assert any("registry: attempt 1 failed" in r.getMessage() and "503" in r.getMessage() for r in caplog.records)


def test_rolling_update_keeps_serving_and_ends_on_the_new_release(target, plan_for, traffic, listen, events,
                                                                   docker_client, service):
    target.roll_out(plan_for("v1"), events())
    assert get(listen).text.strip() == "webapp v1"

    log = events()
    with traffic() as load:
        target.roll_out(plan_for("v2"), log)
        for _ in range(20):  # a few more requests after the switch
            get(listen)

    assert load.failures == [], load.failures[:5]
    assert load.sent > 50
    assert load.bodies[-1] == "webapp v2"
    assert get(listen).text.strip() == "webapp v2"
    serving = target.replicas(service, "production")
    assert [r.sha for r in serving] == [plan_for("v2").sha] * 2
    assert all(r.healthy for r in serving)
    assert len(containers_of(docker_client, service)) == 2
    assert log.steps.count("replica_started") == 2 and log.steps.count("replica_removed") == 2

    report = target.verify(plan_for("v2"), events())
    assert report.healthy, report.reason
    assert report.probes >= 5 and report.failed_probes == 0


def test_unhealthy_release_never_takes_traffic(fast_health, target, plan_for, traffic, listen, events, docker_client,
                                               service):
    target.roll_out(plan_for("v2"), events())
    bad = plan_for("v3", health=dataclasses.replace(fast_health, timeout=3.0))

    with traffic() as load, pytest.raises(RolloutError) as err:
        target.roll_out(bad, events())

    assert "failed its health check" in str(err.value)
    assert "(3 bad answers in a row, or no healthy answer in 3s)" in str(err.value)  # what "failed" means
    assert "500 unhealthy" in str(err.value)  # the probe's last output
    assert load.failures == []
    assert set(load.bodies) == {"webapp v2"}
    assert {r.sha for r in target.replicas(service, "production")} == {plan_for("v2").sha}
    assert len(containers_of(docker_client, service)) == 2


@pytest.mark.parametrize("crash_at", ["replica_started", "lb_added", "draining", "replica_removed"])
def test_interrupted_roll_out_converges_when_run_again(target, plan_for, listen, events, docker_client, service,
                                                       crash_at):
    target.roll_out(plan_for("v1"), events())
    v2 = plan_for("v2")

    with pytest.raises(events.Crash):
        target.roll_out(v2, events(crash_at=crash_at))
    # Whatever the crash left behind, the service still answers.
    assert get(listen).status_code == 200

    target.roll_out(v2, events())

    replicas = target.replicas(service, "production")
    assert [r.sha for r in replicas] == [v2.sha, v2.sha]
    assert all(r.healthy for r in replicas)
    assert len(containers_of(docker_client, service)) == 2  # no orphan
    lb = target.load_balancer(service, "production")
    assert sorted(s.name for s in lb.servers()) == sorted(r.name for r in replicas)
    assert get(listen).text.strip() == "webapp v2"


def test_blue_green_switches_at_once_and_rolls_back_onto_the_kept_set(target, plan_for, traffic, listen, events,
                                                                       docker_client, service):
    blue, green = plan_for("v1", strategy="blue-green"), plan_for("v2", strategy="blue-green")
    target.roll_out(blue, events())
    blue_names = sorted(r.name for r in target.replicas(service, "production"))

    with traffic() as load:
        target.roll_out(green, events())
        assert get(listen).text.strip() == "webapp v2"
        kept = {r.name: r for r in target.replicas(service, "production") if r.sha == blue.sha}
        assert sorted(kept) == blue_names  # the old set still runs, out of rotation
        assert not any(r.healthy for r in kept.values())

        rollback = events()
        target.roll_out(blue, rollback)  # rolling back = rolling out the previous release's plan

    assert "replica_started" not in rollback.steps  # re-used the kept containers
    assert load.failures == [], load.failures[:5]
    assert get(listen).text.strip() == "webapp v1"

    target.finish(blue, events())
    assert sorted(c.name for c in containers_of(docker_client, service)) == blue_names


def test_discard_removes_the_failed_release_leftovers(target, plan_for, events, docker_client, service):
    blue, green = plan_for("v1", strategy="blue-green"), plan_for("v2", strategy="blue-green")
    target.roll_out(blue, events())
    with pytest.raises(events.Crash):
        target.roll_out(green, events(crash_at="replica_healthy"))

    target.discard(green, events())

    assert {c.labels["mainline.sha"] for c in containers_of(docker_client, service)} == {blue.sha}


def test_verify_flags_an_erroring_release_by_its_5xx_rate(target, plan_for, traffic, events):
    erroring = plan_for("v4")
    target.roll_out(erroring, events())

    with traffic() as load:
        report = target.verify(erroring, events())

    assert load.sent > 0
    assert not report.healthy
    assert report.failed_probes == 0  # health itself was fine: only the error rate tells
    assert "5xx rate" in report.reason
    assert report.error_rate > 0.5


def test_build_error_carries_the_tail_of_the_build_log(builder, tmp_path, events):
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY missing-file /x\n")

    with pytest.raises(BuildError) as err:
        builder.ensure_image(tmp_path, f"127.0.0.1:5000/mltest-broken:{uuid.uuid4().hex}", events())

    assert "COPY missing-file /x" in str(err.value)
    assert "missing-file" in str(err.value).splitlines()[-1]


def test_load_balancer_starts_once_and_recovers_from_a_stale_pid_file(state_dir, service, listen):
    lb = HAProxy(state_dir, service, "production", listen)
    try:
        assert lb.ensure_running() is True
        first = lb.pid()
        assert lb.ensure_running() is False  # idempotent: the same process keeps running
        assert lb.pid() == first

        lb.stop()
        lb.dir.mkdir(parents=True, exist_ok=True)
        lb.pid_path.write_text(f"{os.getpid()}\n")  # a live pid that is not our haproxy
        assert lb.ensure_running() is True
        assert lb.pid() not in (None, os.getpid())
        assert get(listen).status_code == 503  # up, with no replica yet
    finally:
        lb.stop()
