# ruff: noqa: F811 - the Docker fixtures are imported from tests/adapters/conftest.py and used as parameters
"""Attacks on the Docker target, on the real engine, registry and HAProxy.

21: Docker's races (a 404 while listing, a container removed between list and inspect, a 409
    from a concurrent removal) during the rollout of a good release are retried, never read as a
    bad release. 11: health probes are bounded in bytes and time. 7: a health path never moves
    the probe to another host. 5: a name never puts the load balancer's files outside the state dir.
"""

from __future__ import annotations

import dataclasses
import select
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from docker.errors import APIError, NotFound

from bot.errors import RolloutError, TransientError
from bot.infra.http_probe import MAX_BODY, MAX_OUTPUT, lb_url, probe, probe_url
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.target import LABEL_SHA, DockerTarget, UnsafeNameError
from bot.retry import policy
from tests.adapters.conftest import (  # noqa: F401 - the Docker fixtures, shared
    ENVIRONMENT,
    builder,
    docker_client,
    events,
    fast_health,
    listen,
    plan_for,
    releases,
    service,
    state_dir,
    target,
)
from tests.conftest import git
from tests.e2e.test_rollout_story import app_for, cleanup, states  # noqa: F401 - fixture

FAST_RETRY = policy("docker-test", attempts=3, base=0.05, cap=0.1)


# -- attack 21: Docker's races are not a bad release ---------------------------------------------------


def docker_error(status: int, reason: str, explanation: str) -> APIError:
    """An error as docker-py raises it for an engine answer, e.g. 404 "No such container"."""
    response = requests.Response()
    response.status_code, response.reason = status, reason
    response.url = "http+docker://localhost/v1.43/containers/json"
    kind = NotFound if status == 404 else APIError
    return kind(f"{status} {reason}", response=response, explanation=explanation)


@dataclasses.dataclass
class Faults:
    """Races to inject. Counts are how many times each happens (float("inf"): for good)."""

    list_404: float = 0  # the engine's list answers 404 "No such container" (a container went away)
    list_500: float = 0  # the engine is busy
    vanish_at_list: int | None = None  # at this list call, a replica of `vanish_sha` is removed
    vanish_sha: str = ""  # ...out of band, between Docker's list and its inspect
    remove_409: float = 0  # a removal answers 409: another removal is in progress
    new_vanishes: float = 0  # a replica just started is removed out of band
    seen: list[str] = dataclasses.field(default_factory=list)

    def take(self, name: str) -> bool:
        left = getattr(self, name)
        if left <= 0:
            return False
        setattr(self, name, left - 1)
        self.seen.append(name)
        return True


class FlakyContainer:
    """A real container whose removal can meet a concurrent one."""

    def __init__(self, real, faults: Faults):
        self._real, self._faults = real, faults

    def __getattr__(self, name):
        return getattr(self._real, name)

    def remove(self, **kwargs):
        if self._faults.take("remove_409"):
            self._real.remove(force=True)  # the other removal, finishing
            raise docker_error(409, "Conflict", f"removal of container {self._real.id[:12]} is already in progress")
        return self._real.remove(**kwargs)


class FlakyContainers:
    def __init__(self, client: FlakyDocker):
        self._client = client
        self._real = client.real.containers

    def __getattr__(self, name):
        return getattr(self._real, name)

    def list(self, all=False, filters=None, ignore_removed=False, **kwargs):
        faults, real = self._client.faults, self._client.real
        self._client.list_calls += 1
        if faults.take("list_404"):
            raise docker_error(404, "Not Found", "No such container: 5f1c0ffee0d1")
        if faults.take("list_500"):
            raise docker_error(500, "Internal Server Error", "the engine is busy")
        listed = real.api.containers(all=all, filters=filters, **kwargs)
        if self._client.list_calls == faults.vanish_at_list:
            victim = next((r for r in listed if (r.get("Labels") or {}).get(LABEL_SHA) == faults.vanish_sha), None)
            if victim is not None:
                real.api.remove_container(victim["Id"], force=True)
                faults.seen.append("vanished")
        result = []
        for row in listed:  # docker-py's own list: inspect each container it listed
            try:
                result.append(FlakyContainer(real.containers.get(row["Id"]), faults))
            except NotFound:
                if not ignore_removed:
                    raise
        return result

    def run(self, *args, **kwargs):
        container = self._real.run(*args, **kwargs)
        if self._client.faults.take("new_vanishes"):
            container.remove(force=True)
        return FlakyContainer(container, self._client.faults)


class FlakyDocker:
    """The real Docker client with the engine's races injected where they happen."""

    def __init__(self, real, faults: Faults):
        self.real, self.faults, self.list_calls = real, faults, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    @property
    def containers(self) -> FlakyContainers:
        return FlakyContainers(self)


def serves(listen: str) -> str:
    return requests.get(f"http://{listen}/", timeout=5).text.strip()


@pytest.mark.docker
@pytest.mark.parametrize("faults", [
    Faults(list_404=2),
    Faults(list_500=1, remove_409=1),
    Faults(new_vanishes=1),
], ids=["404-while-listing", "busy-engine-and-409-on-removal", "new-replica-removed-out-of-band"])
def test_attack_21_docker_races_in_a_good_rollout_are_retried_and_it_goes_live(
        faults, docker_client, state_dir, plan_for, listen, events, service, target, caplog):
    target.roll_out(plan_for("v1"), events())
    flaky = DockerTarget(state_dir, client=FlakyDocker(docker_client, faults), retrying=FAST_RETRY)

    flaky.roll_out(plan_for("v2"), events())

    assert faults.seen, "no fault was injected"
    assert serves(listen) == "webapp v2"
    replicas = target.replicas(service, ENVIRONMENT)
    assert [r.sha for r in replicas] == [plan_for("v2").sha] * 2 and all(r.healthy for r in replicas)
    assert any("retrying" in r.getMessage() for r in caplog.records) or "remove_409" in faults.seen


@pytest.mark.docker
def test_attack_21_a_replica_removed_between_list_and_inspect_does_not_fail_the_rollout(
        docker_client, state_dir, plan_for, listen, events, service, target):
    target.roll_out(plan_for("v1"), events())
    faults = Faults(vanish_at_list=3, vanish_sha=plan_for("v1").sha)
    flaky = DockerTarget(state_dir, client=FlakyDocker(docker_client, faults), retrying=FAST_RETRY)

    flaky.roll_out(plan_for("v2"), events())

    assert "vanished" in faults.seen
    assert serves(listen) == "webapp v2"
    assert {r.sha for r in target.replicas(service, ENVIRONMENT)} == {plan_for("v2").sha}


@pytest.mark.docker
def test_attack_21_a_persisting_docker_fault_is_transient_and_production_is_untouched(
        docker_client, state_dir, plan_for, listen, events, service, target):
    v1 = plan_for("v1")
    target.roll_out(v1, events())
    flaky = DockerTarget(state_dir, client=FlakyDocker(docker_client, Faults(list_404=float("inf"))),
                         retrying=FAST_RETRY)

    with pytest.raises(TransientError) as err:
        flaky.roll_out(plan_for("v2"), events())

    assert not isinstance(err.value, RolloutError)
    assert "404" in str(err.value) and "No such container" in str(err.value)
    assert serves(listen) == "webapp v1"
    assert {r.sha for r in target.replicas(service, ENVIRONMENT)} == {v1.sha}


@pytest.mark.docker
def test_attack_21_docker_race_in_a_good_release_through_the_pipeline_goes_live_and_reverts_nothing(
        tmp_path, settings, wired, cleanup, docker_client):
    app = app_for(tmp_path, cleanup, "race")
    v1 = app.release("v1")
    wired.pipeline.request(app.request(v1))
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service) == {v1: "live"}

    faults = Faults(list_404=2, remove_409=1, vanish_at_list=4, vanish_sha=v1)
    wired.pipeline.w.target_for._docker = DockerTarget(settings.state_dir, client=FlakyDocker(docker_client, faults))
    v2 = app.release("v2")
    wired.pipeline.request(app.request(v2))
    wired.pipeline.drive(app.service, "production")

    assert {"list_404", "remove_409", "vanished"} <= set(faults.seen)
    deploy = next(d for d in wired.pipeline.deploys(app.service) if d["sha"] == v2)
    assert deploy["state"] == "live", deploy["reason"]
    assert not [e for e in deploy["events"] if e["kind"] in ("rolling_back", "rolled_back", "reverting")]
    assert app.serves() == f"{app.service} v2"
    assert app.head() == v2  # master untouched: no revert
    assert not any(line.startswith("Revert") for line in
                   git("log", "--format=%s", "master", cwd=app.repo.bare).splitlines())


@pytest.mark.docker
def test_attack_21_a_persisting_docker_fault_through_the_pipeline_waits_then_goes_live(
        tmp_path, settings, wired, cleanup, docker_client):
    app = app_for(tmp_path, cleanup, "stuck", replicas=1)
    v1 = app.release("v1")
    wired.pipeline.request(app.request(v1))
    wired.pipeline.drive(app.service, "production")
    faults = Faults(list_404=float("inf"))
    wired.pipeline.w.target_for._docker = DockerTarget(settings.state_dir, client=FlakyDocker(docker_client, faults),
                                                       retrying=FAST_RETRY)
    v2 = app.release("v2")
    wired.pipeline.request(app.request(v2))
    wired.pipeline.drive(app.service, "production")

    deploy = next(d for d in wired.pipeline.deploys(app.service) if d["sha"] == v2)
    assert deploy["state"] == "rolling_out"  # waiting for the machinery, not judged
    said = [e["message"] for e in deploy["events"] if e["kind"] == "error"]
    assert said and "TransientError" in said[-1] and "No such container" in said[-1]
    assert app.serves() == f"{app.service} v1" and app.head() == v2

    faults.list_404 = 0  # the engine recovers
    wired.pipeline.drive(app.service, "production")
    assert states(wired, app.service)[v2] == "live"
    assert app.serves() == f"{app.service} v2" and app.head() == v2


# -- attack 11: probes are bounded -----------------------------------------------------------------------


@contextmanager
def http_server(answer: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[ThreadingHTTPServer]:
    """A tiny HTTP server on 127.0.0.1 answering every GET with `answer`."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            with suppress(OSError):  # the probe hung up, as it should
                answer(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def url_of(server: ThreadingHTTPServer, path: str = "/health") -> str:
    return probe_url("127.0.0.1", server.server_address[1], path)


def measured(url: str, timeout: float):
    tracemalloc.start()
    start = time.monotonic()
    try:
        result = probe(url, timeout=timeout)
        return result, time.monotonic() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_attack_11_a_health_body_that_trickles_forever_is_cut_at_the_deadline():
    stop = threading.Event()

    def trickle(handler):
        handler.send_response(200)
        handler.end_headers()
        while not stop.is_set():  # a few bytes at a time, forever
            handler.wfile.write(b"ok " * 10)
            handler.wfile.flush()
            time.sleep(0.01)

    with http_server(trickle) as server:
        result, took, peak = measured(url_of(server), timeout=1.0)
        stop.set()

    assert took < 10, f"the probe ran {took:.1f}s past its 1s deadline (the body never ends)"
    assert not result.healthy
    assert "TimeoutError" in result.line
    assert peak < 1024 * 1024


def test_attack_11_a_10_mb_health_body_is_read_only_up_to_64_kib():
    def huge(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(10 * 1024 * 1024))
        handler.end_headers()
        chunk = b"\x1b[31m<!channel>\r\n" + b"A" * 65_000
        for _ in range(10 * 1024 * 1024 // len(chunk)):
            handler.wfile.write(chunk)

    with http_server(huge) as server:
        result, _took, peak = measured(url_of(server), timeout=5.0)

    assert result.status == 200
    assert result.body_bytes == MAX_BODY
    assert peak < 1024 * 1024, f"{peak} bytes held for a 64 KiB read"
    assert len(result.line) <= MAX_OUTPUT and result.line.isprintable() and "\x1b" not in result.line


def test_attack_11_redirects_are_followed_on_the_same_host_only(events):
    def other(handler):  # pragma: no cover - must never be reached
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b"metadata-secret")

    with http_server(other) as elsewhere:
        def app(handler):
            if handler.path == "/health":
                handler.send_response(302)
                handler.send_header("Location", "/health/")
            elif handler.path == "/health/":
                handler.send_response(200)
            else:
                handler.send_response(302)
                handler.send_header("Location", f"http://127.0.0.1:{elsewhere.server_address[1]}/latest")
            handler.end_headers()
            handler.wfile.write(b"ok")

        with http_server(app) as server:
            same = probe(url_of(server, "/health"))
            away = probe(url_of(server, "/go-away"))

    assert same.healthy and same.url.endswith("/health/")
    assert not away.healthy and "redirect to another host refused" in away.line
    assert "metadata-secret" not in away.line


# -- attack 7, target side: the health path never moves the probe to another host ------------------------


@pytest.mark.parametrize("path", ["@127.0.0.1:{port}/latest", "//127.0.0.1:{port}/latest",
                                  "http://127.0.0.1:{port}/latest", "\\\\127.0.0.1:{port}/latest"])
def test_attack_07_a_health_path_naming_another_host_stays_on_the_load_balancer(path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with http_server(lambda h: (h.send_response(404), h.end_headers())) as lb:
            url = lb_url(f"127.0.0.1:{lb.server_address[1]}", path.format(port=port))
            result = probe(url)
        reached = select.select([other], [], [], 0.3)[0]

    assert not reached, f"{url} reached 127.0.0.1:{port}"
    assert url.startswith(f"http://127.0.0.1:{lb.server_address[1]}/")
    assert result.status == 404


@pytest.mark.docker
def test_attack_07_verify_with_a_hostile_health_path_never_leaves_the_load_balancer(
        plan_for, target, events, fast_health):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        target.roll_out(plan_for("v1"), events())
        hostile = plan_for("v1", health=dataclasses.replace(fast_health, path=f"@127.0.0.1:{port}/latest", bake=1.0))
        report = target.verify(hostile, events())
        reached = select.select([other], [], [], 0.3)[0]

    assert not reached
    assert not report.healthy  # the app has no such page: it fails, on the load balancer
    assert f"/@127.0.0.1:{port}/latest" in report.last_output and len(report.last_output) <= MAX_OUTPUT


# -- attack 5, target side: names never leave the state dir ----------------------------------------------


@pytest.mark.docker
def test_attack_05_an_environment_name_that_leaves_the_state_dir_is_refused(
        state_dir, plan_for, events, docker_client, service):
    victim = HAProxy(state_dir, "api", "production", "127.0.0.1:1")  # another service's load balancer
    victim.dir.mkdir(parents=True)
    victim.config_path.write_text("victim config\n")
    target = DockerTarget(state_dir, client=docker_client)

    for name in ("../../api-production", "x/../../haproxy/api-production", "a/b", "Prod\nuction", "."):
        plan = dataclasses.replace(plan_for("v1"), environment=name)
        with pytest.raises(UnsafeNameError) as err:
            target.roll_out(plan, events())
        assert "is not allowed" in str(err.value)

    assert victim.config_path.read_text() == "victim config\n"
    assert sorted(p.name for p in (state_dir / "haproxy").iterdir()) == ["api.production"]
    assert list(state_dir.parent.glob("*-production")) == []
    assert docker_client.containers.list(all=True, filters={"label": f"mainline.service={service}"}) == []


@pytest.mark.docker
def test_attack_21_a_failing_bake_the_machinery_explains_is_not_a_verdict(
        plan_for, target, events, docker_client, service, fast_health, state_dir):
    v1 = plan_for("v1", health=dataclasses.replace(fast_health, bake=1.0))
    target.roll_out(v1, events())
    target = DockerTarget(state_dir, client=docker_client, retrying=FAST_RETRY)
    for container in docker_client.containers.list(filters={"label": f"mainline.service={service}"}):
        container.remove(force=True)  # someone else's cleanup job, mid-bake

    with pytest.raises(TransientError) as vanished:
        target.verify(v1, events())
    target.load_balancer(service, ENVIRONMENT).stop()
    with pytest.raises(TransientError) as lb_down:
        target.verify(v1, events())

    assert "outside Mainline" in str(vanished.value) and "not judging the release" in str(vanished.value)
    assert "load balancer" in str(lb_down.value)
