"""The load balancer on a Docker host, not where the worker runs: `load_balancer: {host}` puts the
environment's HAProxy in a container on that host (here the `ssh` engine, reached over ssh://),
its config copied in and its runtime API spoken through `docker exec`, with replicas on that
host and on the `tls` engine (tcp:// with mutual TLS). No HAProxy process runs by the worker."""

from __future__ import annotations

import csv
import io
import tarfile
from dataclasses import replace

import docker
import pytest

from bot.domain.app import AppSpec
from bot.infra.secrets import SecretResolver
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.lb_container import LABEL_LB
from bot.infra.targets.docker.target import LABEL_PORT, LABEL_SERVICE, DockerTarget
from tests.adapters.conftest import ENVIRONMENT
from tests.adapters.engines import SSH, STATE, TLS, engine, host_access

pytestmark = pytest.mark.docker

HOSTS = (SSH, TLS)
IMAGE = "127.0.0.1:5000/mainline-haproxy:local"  # built and pushed by scripts/services.sh up


@pytest.fixture
def access(tmp_path):
    return host_access(tmp_path)


@pytest.fixture
def lb_target(state_dir, service, access):
    target = DockerTarget(state_dir, secrets=SecretResolver(access.secrets_dir),
                          hosts=replace(access, haproxy_image=IMAGE))
    yield target
    HAProxy(state_dir, service, ENVIRONMENT, "").stop()
    for host in HOSTS:
        client = engine(host)
        for label in (f"{LABEL_SERVICE}={service}", f"{LABEL_LB}=mainline-lb-{service}-{ENVIRONMENT}"):
            for container in client.containers.list(all=True, filters={"label": label}):
                container.remove(force=True)
        client.close()


def lb_container(service: str):
    client = engine(SSH)
    try:
        (found,) = client.containers.list(filters={"label": f"{LABEL_LB}=mainline-lb-{service}-{ENVIRONMENT}"})
        return found
    finally:
        client.close()


def test_the_load_balancer_runs_on_a_docker_host_and_is_driven_through_it(
        lb_target, plan_for, service, listen, traffic, events, releases):
    app = AppSpec(hosts=HOSTS, lb_host=SSH.url)
    beside = AppSpec(hosts=HOSTS)
    v1 = replace(plan_for("v1", replicas=2), app=app)
    v2 = replace(plan_for("v2", replicas=2), app=app)
    sink = events()
    # First beside the worker; then the config moves it onto the ssh host, with its servers.
    before = replace(v1, app=beside)
    lb_target.roll_out(before, sink)
    assert lb_target.verify(before, sink).healthy
    lb_target.finish(before, sink)
    assert HAProxy(lb_target.state_dir, service, ENVIRONMENT, listen).pid() is not None
    moving = events()
    lb_target.roll_out(v1, moving)
    assert lb_target.verify(v1, moving).healthy
    lb_target.finish(v1, moving)
    assert any(f"moved the load balancer of {service}/{ENVIRONMENT} from beside the worker to Docker host "
               f"{SSH.url}, with its 2 server(s)" in line for line in moving.lines), moving.lines

    # HAProxy is a container on the ssh host, with host networking; no process by the worker.
    container = lb_container(service)
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert HAProxy(lb_target.state_dir, service, ENVIRONMENT, listen).pid() is None
    # Its runtime API is a unix socket inside the container only: nothing on the host's network.
    stream, _ = container.get_archive("/mainline/haproxy.cfg")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        config = tar.extractfile("haproxy.cfg").read().decode()
    assert "stats socket /mainline/admin.sock" in config and f"bind {listen}" in config
    # Its servers are the replicas, one per host, at host:port.
    stat = container.exec_run(["sh", "-c", "echo 'show stat' | socat - UNIX-CONNECT:/mainline/admin.sock"])
    rows = csv.DictReader(stat.output.decode().lstrip("# ").splitlines())
    servers = {row["svname"]: row["addr"] for row in rows if row["pxname"] == "replicas"
               and row["svname"] not in ("BACKEND", "FRONTEND")}
    expected = {}
    for host in HOSTS:
        client = engine(host)
        (replica,) = client.containers.list(filters={"label": f"{LABEL_SERVICE}={service}"})
        expected[replica.name] = f"{host.address}:{replica.labels[LABEL_PORT]}"
        client.close()
    assert servers == expected

    # A rolling deploy through it drops no request.
    with traffic() as load:
        lb_target.roll_out(v2, sink)
        assert lb_target.verify(v2, sink).healthy
        lb_target.finish(v2, sink)
    assert load.failures == [] and load.sent > 0
    assert set(load.bodies[-10:]) == {releases["v2"].body}

    # Its container killed on the host: the reconciler's repair starts it again with the replicas.
    lb_container(service).kill()
    assert not lb_target.in_shape(v2)
    repaired = events()
    done = lb_target.repair(v2, repaired)
    assert any("load balancer" in line and "restarted" in line for line in done), done
    assert lb_target.in_shape(v2)
    assert lb_target.verify(v2, events()).healthy

    # And back beside the worker when the config says so: the container hands over and goes.
    back = events()
    after = replace(v2, app=beside)
    lb_target.roll_out(after, back)
    assert lb_target.verify(after, back).healthy
    assert any(f"from Docker host {SSH.url} to beside the worker" in line for line in back.lines), back.lines
    client = engine(SSH)
    assert client.containers.list(all=True, filters={"label": f"{LABEL_LB}=mainline-lb-{service}-{ENVIRONMENT}"}) == []
    client.close()
    assert HAProxy(lb_target.state_dir, service, ENVIRONMENT, listen).running()


def test_a_load_balancer_on_a_host_needs_its_image_setting(state_dir, access, plan_for):
    from bot.errors import InfrastructureFailure

    target = DockerTarget(state_dir, secrets=SecretResolver(access.secrets_dir), hosts=access)
    plan = replace(plan_for("v1"), app=AppSpec(hosts=HOSTS, lb_host=SSH.url))
    with pytest.raises(InfrastructureFailure, match="MAINLINE_HAPROXY_IMAGE"):
        target.roll_out(plan, lambda *a, **k: None)
    client = docker.DockerClient(base_url=f"unix://{STATE}/engines/ssh/docker.sock")
    assert client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={plan.service}"}) == []
    client.close()
