"""Run a repo check (deploy.yml `checks:`) in a container of the built image: no network,
the check's CPU and memory limits, killed at its timeout, output tail kept."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterable

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound

from bot.config import CONFIG_PATH, RepoCheck
from bot.errors import NotFoundError, TransientError
from bot.infra.targets.docker.world import NOT_A_REPLICA
from bot.ports import EventSink
from checks.inputs import RepoCheckResult

TAIL_LINES = 40
LABEL_CHECK = "mainline.check"


def _quiet(*_args, **_kwargs) -> None:
    pass


class ContainerCheckRunner:
    """Runs each check as `<shell> <run>` in a fresh container of the image, then removes it."""

    def __init__(self, client=None, shell: tuple[str, ...] = ("/bin/sh", "-c"), tail_lines: int = TAIL_LINES):
        self._client = client
        self.shell = shell
        self.tail_lines = tail_lines

    @property
    def client(self):
        if self._client is None:
            self._client = docker.from_env()
        return self._client

    def run_all(self, image: str, checks: Iterable[RepoCheck], on_event: EventSink = _quiet,
                stop_on_failure: bool = True) -> list[RepoCheckResult]:
        """Each check in order; by default stop at the first that fails, since it blocks anyway."""
        results = []
        for check in checks:
            result = self.run(image, check, on_event)
            results.append(result)
            if stop_on_failure and not result.passed:
                break
        return results

    def run(self, image: str, check: RepoCheck, on_event: EventSink = _quiet) -> RepoCheckResult:
        """Run one check. A check that fails, times out, cannot start or has limits Docker would
        misread is a result, not an error; a missing image raises NotFoundError and an engine
        fault TransientError."""
        try:
            # Validated by the config schema already; checked again because Docker reads 0 as
            # "unlimited", and a value it refuses must fail the deploy, not be retried forever.
            cpus, memory, timeout = check.limits()
        except (ValueError, TypeError) as exc:
            return RepoCheckResult(check.name, None, False, f"invalid limits for check {check.name} in "
                                   f"{CONFIG_PATH}: {exc}", 0.0, None)
        on_event(f"check {check.name}: {check.run}", check=check.name, step="check_started")
        started = time.monotonic()
        try:
            container = self.client.containers.create(
                image,
                command=[*self.shell, check.run],
                name=f"mainline-check-{_container_safe(check.name)}-{uuid.uuid4().hex[:8]}",
                labels={**NOT_A_REPLICA, LABEL_CHECK: check.name},  # its image's LABELs make no replica
                network_mode="none",  # a check must not reach production, the registry or the internet
                nano_cpus=int(cpus * 1e9),
                mem_limit=memory,
                memswap_limit=memory,  # no swap: the memory limit is the limit
                pids_limit=1024,
                environment={"CI": "true", "MAINLINE_CHECK": check.name},
            )
        except ImageNotFound as exc:
            raise NotFoundError(f"image {image} not found for check {check.name}") from exc
        except APIError as exc:
            if exc.is_client_error():  # Docker refused the check's own settings: retrying cannot help
                return RepoCheckResult(check.name, None, False, _explain(exc), time.monotonic() - started, timeout)
            raise TransientError(f"could not create a container for check {check.name}: {exc}") from exc
        except DockerException as exc:
            raise TransientError(f"could not create a container for check {check.name}: {exc}") from exc
        try:
            result = self._run_container(container, check, timeout, started)
        finally:
            # Already gone, or not removable now: a leftover is labelled mainline.check for cleanup.
            with contextlib.suppress(APIError, DockerException):
                container.remove(force=True)
        outcome = ("passed" if result.passed else "timed out" if result.timed_out
                   else f"failed (exit {result.exit_code})")
        on_event(f"check {check.name} {outcome} in {result.duration:.1f}s", check=check.name, step="check_finished",
                 exit_code=result.exit_code, timed_out=result.timed_out)
        return result

    def _run_container(self, container, check: RepoCheck, timeout: float, started: float) -> RepoCheckResult:
        try:
            container.start()
        except APIError as exc:
            # The engine could not exec the command, e.g. the image has no shell: the check's fault.
            return RepoCheckResult(check.name, None, False, _explain(exc), time.monotonic() - started, timeout)
        exit_code: int | None = None
        timed_out = False
        try:
            exit_code = int(container.wait(timeout=timeout)["StatusCode"])
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            with contextlib.suppress(APIError):  # it exited between the timeout and the kill
                container.kill()
        tail = self._tail(container)
        return RepoCheckResult(check.name, exit_code, timed_out, tail, time.monotonic() - started, timeout)

    def _tail(self, container) -> str:
        try:
            raw = container.logs(stdout=True, stderr=True, tail=self.tail_lines)
        except (APIError, DockerException) as exc:
            return f"(output unavailable: {exc})"
        return raw.decode("utf-8", errors="replace")


def _container_safe(name: str) -> str:
    """A container-name fragment: Docker allows [a-zA-Z0-9_.-] only."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", name[:40])


def _explain(exc: APIError) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return f"the check could not start: {text}"
