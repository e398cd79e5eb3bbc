"""One environment on three Docker hosts, each reached its own way: the shared engine over
`unix://`, the `tls` engine over `tcp://` with mutual TLS, the `ssh` engine over `ssh://` through
a real sshd with a key made for the test (all started by `scripts/services.sh up`). Replicas
spread over them behind one HAProxy whose servers are host:port; a host that goes away has its
replicas replaced on the others, and the deploy says so; when it comes back, what it brought
back is removed."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from docker.errors import DockerException

from bot.domain.app import AppSpec, DockerHost
from bot.infra.secrets import SecretResolver
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.hosts import FRESH, HostAccess
from bot.infra.targets.docker.target import LABEL_PORT, LABEL_SERVICE, DockerTarget
from tests.adapters.conftest import ENVIRONMENT
from tests.adapters.engines import HOSTS, SSH, TLS, UNIX, engine, host_access, services

pytestmark = pytest.mark.docker


@pytest.fixture
def access(tmp_path) -> HostAccess:
    return host_access(tmp_path)


@pytest.fixture
def fleet_target(state_dir, service, access):
    target = DockerTarget(state_dir, secrets=SecretResolver(access.secrets_dir), hosts=access)
    yield target
    services("engine-up")
    for host in HOSTS:
        client = engine(host)
        for container in client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={service}"}):
            container.remove(force=True)
        client.close()
    HAProxy(state_dir, service, ENVIRONMENT, "").stop()


def wait_until(predicate, timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def answers(access: HostAccess, host: DockerHost) -> bool:
    try:
        client = access.connect(host)
    except (DockerException, OSError):
        return False
    try:
        return bool(client.ping())
    finally:
        client.close()


def ours(service: str, hosts: tuple[DockerHost, ...] = HOSTS) -> dict[DockerHost, list]:
    found = {}
    for host in hosts:
        client = engine(host)
        found[host] = client.containers.list(filters={"label": f"{LABEL_SERVICE}={service}"})
        client.close()
    return found


def test_replicas_spread_over_unix_tls_and_ssh_hosts_and_a_host_gone_is_replaced(
        fleet_target, access, plan_for, service, listen, traffic, events, releases):
    v1 = replace(plan_for("v1", replicas=3), app=AppSpec(hosts=HOSTS))
    v2 = replace(plan_for("v2", replicas=3), app=AppSpec(hosts=HOSTS))
    lb = HAProxy(fleet_target.state_dir, service, ENVIRONMENT, listen)

    sink = events()
    fleet_target.roll_out(v1, sink)
    assert fleet_target.verify(v1, sink).healthy
    fleet_target.finish(v1, sink)
    # One replica on each host, each in the load balancer at its host's address and port.
    placed = ours(service)
    assert {h.url: len(cs) for h, cs in placed.items()} == {h.url: 1 for h in HOSTS}, sink.lines
    servers = {s.name: s.address for s in lb.servers()}
    for host, containers in placed.items():
        (container,) = containers
        assert servers[container.name] == f"{host.address}:{container.labels[LABEL_PORT]}"

    # A rolling deploy across the three hosts drops no request.
    with traffic() as load:
        fleet_target.roll_out(v2, sink)
        assert fleet_target.verify(v2, sink).healthy
        fleet_target.finish(v2, sink)
    assert load.failures == [] and load.sent > 0
    assert set(load.bodies[-10:]) == {releases["v2"].body}
    placed = ours(service)
    assert {h.url: len(cs) for h, cs in placed.items()} == {h.url: 1 for h in HOSTS}

    # The tls host goes away: the reconciler's repair starts its replica on the others, and says so.
    services("engine-down", "tls")
    repaired = events()
    done = fleet_target.repair(v2, repaired)
    assert any("Docker host tcp://127.0.0.1:2376 does not answer" in line and "replaced on" in line
               for line in repaired.lines), repaired.lines
    assert done, repaired.lines
    up = {h.url: len(cs) for h, cs in ours(service, (UNIX, SSH)).items()}
    assert sum(up.values()) == 3 and all(up.values()), up
    assert fleet_target.in_shape(v2)
    with traffic() as load:
        deploy = events()
        fleet_target.roll_out(v1, deploy)  # a deploy while the host is gone says so too
        assert fleet_target.verify(v1, deploy).healthy
        fleet_target.finish(v1, deploy)
    assert load.failures == []
    assert any("does not answer" in line for line in deploy.lines), deploy.lines
    assert set(load.bodies[-10:]) == {releases["v1"].body}

    # It comes back with the replica it had: that one is surplus now, and is removed.
    services("engine-up")
    client = engine(TLS)
    client.containers.get(placed[TLS][0].name).start()  # as a host whose restart policy brings it back
    client.close()
    assert wait_until(lambda: answers(access, TLS), 30, 0.5), "the tls engine did not answer over tcp:// again"
    time.sleep(FRESH)  # what the target last saw of the host is looked at again after this
    assert not fleet_target.in_shape(v1)
    # The reconciler also spreads the replicas again: the host that was gone gets its share back,
    # each new one in service before a crowded one is drained.
    back = events()
    with traffic() as load:
        done = fleet_target.repair(v1, back)
    assert load.failures == []
    assert any(line.startswith("removed") and placed[TLS][0].name in line for line in done), done
    assert any(line.startswith("moved a replica off") for line in done), done
    assert fleet_target.in_shape(v1)
    assert {h.url: len(cs) for h, cs in ours(service).items()} == {h.url: 1 for h in HOSTS}
    assert set(load.bodies[-10:]) == {releases["v1"].body}
