"""The CandidateTrial on a Docker host: one shadow replica of the candidate, on a free port,
outside the service's load balancer, so no user ever reaches it. It is probed on the health path
and on the `culprit.checks` requests for the bake, and judged by the release's own rules (health
probes failing `failures` times in a row, the 5xx rate against `max_error_rate`).

The replica carries its own label (never the target's service label), so the target's rollouts
never see it; it is removed when the trial ends, and a left-over of a killed worker is removed
before the next trial of the same candidate. Docker's errors are TransientErrors: the machinery
failing tells nothing about the candidate."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from bot.culprit.docker_share import Responses, weighted
from bot.domain import HealthPolicy, RolloutPlan, VerifyReport
from bot.errors import TransientError
from bot.infra.http_probe import ProbeResult, probe, probe_url
from bot.infra.secrets import SecretResolver
from bot.infra.targets.docker.containers import free_port
from bot.infra.targets.docker.runspec import run_spec, spec_key
from bot.infra.targets.docker.world import HOST, NAME, NOT_A_REPLICA, infrastructure, load_balancer_in
from bot.ports import EventSink

LABEL_BISECT = "mainline.bisect"  # service/environment of the search the replica serves


class DockerShadowTrial:
    """`state_dir` and `secrets` as the Docker target has them: a candidate runs with the release's
    own env, secrets, command and limits (a SecretError, like Docker's errors, stops the search)."""

    def __init__(self, state_dir: Path | None = None, secrets: SecretResolver | None = None, client: Any = None,
                 port_range: tuple[int, int] = (30000, 39999)):
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.secrets = secrets or SecretResolver(None)
        self._client = client
        self.port_range = port_range

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker.from_env()
        return self._client

    def judge(self, plan: RolloutPlan, checks: Sequence[tuple[str, int]], on_event: EventSink,
              weight: int = 0) -> VerifyReport:
        for name in (plan.service, plan.environment):
            if not NAME.fullmatch(name):
                raise TransientError(f"unsafe name {name[:40]!r}")
        what = f"trying {plan.sha[:12]} of {plan.service}/{plan.environment} as a shadow replica"
        name = f"mainline-bisect-{plan.service}-{plan.environment}-{plan.sha[:12]}"
        spec = run_spec(plan, self.secrets, spec_key(self.state_dir or Path(".mainline")))
        on_event = spec.sink(on_event)  # no secret value in an event
        with infrastructure(what):
            self._remove(name)
            port = self._free_port()
            run = {**spec.run_kwargs(spec.web, port), "restart_policy": {"Name": "no"}}
            container = self.client.containers.run(
                plan.image, detach=True, name=name, network_mode="host",
                labels={**NOT_A_REPLICA, LABEL_BISECT: f"{plan.service}/{plan.environment}",
                        "mainline.sha": plan.sha}, **run)
        traffic = f"{weight}% of the requests once healthy" if weight else "no user traffic"
        on_event(f"started shadow replica {name} on port {port} ({traffic})", step="shadow_started",
                 replica=name, port=port)

        def share() -> AbstractContextManager[Responses | None]:
            if not weight:
                return nullcontext(None)
            lb = load_balancer_in(self.state_dir or Path(".mainline"), plan.service, plan.environment, plan.listen)
            return weighted(lb, name, f"{HOST}:{port}", weight, on_event)

        try:
            with infrastructure(what):
                report = Bake(plan.health, port, checks, container).run(on_event, share)
            return replace(report, reason=spec.masker(report.reason), last_output=spec.masker(report.last_output))
        finally:
            with infrastructure(what):
                self._remove(name)
            on_event(f"removed shadow replica {name}", step="shadow_removed", replica=name)

    def _remove(self, name: str) -> None:
        with suppress(NotFound):
            self.client.containers.get(name).remove(force=True)

    def _free_port(self) -> int:
        return free_port(self.port_range)


class Bake:
    """One shadow replica's trial: healthy in time, then healthy and answering through the bake."""

    def __init__(self, health: HealthPolicy, port: int, checks: Sequence[tuple[str, int]], container: Any):
        self.health = health
        self.container = container
        self.urls: list[tuple[str, int | None]] = [(probe_url(HOST, port, health.path), None)]
        self.urls += [(probe_url(HOST, port, path), status) for path, status in checks]
        self.probes = self.failed = self.requests = self.errors = 0
        self.last = ""

    def run(self, on_event: EventSink,
            share: Callable[[], AbstractContextManager[Responses | None]] | None = None) -> VerifyReport:
        """`share`: put the healthy replica in front of users for the bake (canary mode)."""
        started = self._started()
        if started is not None:
            return started
        with share() if share is not None else nullcontext(None) as responses:
            report = self._bake()
            if responses is not None:
                errors, total = responses()
                self.requests += total
                self.errors += errors
        if not report.healthy:
            return report
        rate = self.errors / self.requests if self.requests else 0.0
        if rate > self.health.max_error_rate:
            return self._report(False, f"5xx rate {rate:.1%} ({self.errors} of {self.requests}) is above "
                                       f"{self.health.max_error_rate:.1%}")
        on_event(f"shadow replica healthy after {self.probes} probes", step="shadow_passed")
        return self._report(True, "")

    def _bake(self) -> VerifyReport:
        deadline = time.monotonic() + self.health.bake
        in_a_row = 0
        while True:
            bad = [why for url, expected in self.urls if (why := self._ask(url, expected))]
            in_a_row = in_a_row + 1 if bad else 0
            if in_a_row >= self.health.failures:
                return self._report(False, f"{in_a_row} probes in a row failed: {bad[0]}")
            if time.monotonic() >= deadline:
                return self._report(True, "")
            time.sleep(self.health.interval)

    def _started(self) -> VerifyReport | None:
        """Wait for the first healthy answer; a replica that exits or keeps answering non-2xx is bad."""
        url = self.urls[0][0]
        deadline = time.monotonic() + self.health.timeout
        answered_badly = 0
        while time.monotonic() < deadline:
            result = probe(url)
            self.last = result.line
            if result.healthy:
                return None
            answered_badly = answered_badly + 1 if result.answered else 0
            if answered_badly >= self.health.failures:
                self._count(result)
                return self._report(False, f"never became healthy: {result.line}")
            if not self._running():
                self.probes += 1
                return self._report(False, f"the replica exited: {self._logs()}")
            time.sleep(min(self.health.interval, 0.25))
        self.probes += 1
        return self._report(False, f"not healthy within {self.health.timeout:g}s: {self.last}")

    def _ask(self, url: str, expected: int | None) -> str:
        """One request; why it failed, or ''."""
        result = probe(url)
        self._count(result)
        ok = result.healthy if expected is None else result.status == expected
        if not ok:
            self.failed += 1
            self.last = result.line
            return result.line
        return ""

    def _count(self, result: ProbeResult) -> None:
        self.probes += 1
        if result.status is not None:
            self.requests += 1
            self.errors += result.status >= 500

    def _running(self) -> bool:
        try:
            self.container.reload()
        except NotFound as exc:
            raise TransientError("the shadow replica was removed outside Mainline") from exc
        except DockerException as exc:
            raise TransientError(f"Docker: {exc}") from exc
        return self.container.status in ("running", "created")

    def _logs(self) -> str:
        try:
            return self.container.logs(tail=20).decode(errors="replace").strip()[-1000:] or "(no output)"
        except DockerException:
            return "(logs unavailable)"

    def _report(self, healthy: bool, reason: str) -> VerifyReport:
        return VerifyReport(healthy, self.probes, self.failed, self.requests, self.errors, reason, self.last[-500:])
