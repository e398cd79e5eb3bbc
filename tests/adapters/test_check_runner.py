"""Repo checks run in a container of the built image: limits, timeouts, output tail, no network.

Needs the real Docker engine and the registry on 127.0.0.1:5000 (scripts/services.sh up)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import docker
import pytest

from bot.config import RepoCheck
from bot.domain import GateStatus
from bot.infra.check_runner import LABEL_CHECK, ContainerCheckRunner
from checks.repo_checks import repo_checks_gate

pytestmark = pytest.mark.docker

BUSYBOX = Path("/bin/busybox")
# The shell applets installed as links, so `sh -c "nc ..."` finds them on PATH.
WITH_SHELL = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
# Like the sample app's image: busybox only, no /bin/sh.
WITHOUT_SHELL = "FROM scratch\nCOPY busybox /bin/busybox\n"


@pytest.fixture(scope="module")
def engine():
    client = docker.from_env()
    yield client
    client.close()


def _build(engine, tmp_path_factory, dockerfile: str) -> str:
    context = tmp_path_factory.mktemp("checkimage")
    shutil.copyfile(BUSYBOX, context / "busybox")
    (context / "busybox").chmod(0o755)
    (context / "Dockerfile").write_text(dockerfile)
    tag = f"mltest-checks:{uuid.uuid4().hex[:12]}"
    # No bridge network on this engine, so the build's RUN step gets none either.
    engine.images.build(path=str(context), tag=tag, rm=True, forcerm=True, network_mode="none")
    return tag


@pytest.fixture(scope="module")
def image(engine, tmp_path_factory):
    tag = _build(engine, tmp_path_factory, WITH_SHELL)
    yield tag
    engine.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def shell_less_image(engine, tmp_path_factory):
    tag = _build(engine, tmp_path_factory, WITHOUT_SHELL)
    yield tag
    engine.images.remove(tag, force=True)


@pytest.fixture
def runner(engine) -> ContainerCheckRunner:
    return ContainerCheckRunner(client=engine)


def _leftovers(engine, name: str) -> list:
    return engine.containers.list(all=True, filters={"label": f"{LABEL_CHECK}={name}"})


def test_passing_check_passes_and_keeps_its_output(runner, engine, image):
    check = RepoCheck(name="unit", run="echo tests ok; echo warning on stderr >&2; exit 0", timeout="30s")
    result = runner.run(image, check)

    assert result.passed and result.exit_code == 0 and not result.timed_out
    assert "tests ok" in result.output_tail and "warning on stderr" in result.output_tail
    assert repo_checks_gate([result]).status is GateStatus.PASS
    assert _leftovers(engine, "unit") == []


def test_failing_check_blocks_with_exit_code_and_last_lines(runner, engine, image):
    script = "i=1; while [ $i -le 60 ]; do echo line $i; i=$((i+1)); done; echo boom; exit 3"
    result = runner.run(image, RepoCheck(name="lint", run=script, timeout="30s"))

    assert result.exit_code == 3 and not result.passed
    lines = result.output_tail.splitlines()
    assert len(lines) == 40 and lines[-1] == "boom" and lines[0] == "line 22"  # 60 lines and boom: the last 40
    gate = repo_checks_gate([result])
    assert gate.status is GateStatus.BLOCK
    assert "check lint failed (exit code 3)" in gate.reason
    assert gate.reason.endswith("line 60\nboom")
    assert _leftovers(engine, "lint") == []


def test_check_past_its_timeout_is_killed_and_blocks(runner, engine, image):
    result = runner.run(image, RepoCheck(name="slow", run="echo starting; sleep 60", timeout="1s"))

    assert result.timed_out and result.exit_code is None
    assert result.duration < 40  # killed at its 1 s timeout, not after its 60 s sleep
    assert "starting" in result.output_tail
    gate = repo_checks_gate([result])
    assert gate.status is GateStatus.BLOCK and "check slow timed out after 1s" in gate.reason
    assert _leftovers(engine, "slow") == []


def test_check_has_no_network_even_to_the_registry_on_the_host(runner, engine, image):
    probe = "echo | nc -w 2 127.0.0.1 5000 && echo reached-registry"
    # Control: with host networking the same probe reaches the registry, so it is a fair test.
    control = engine.containers.run(image, ["/bin/sh", "-c", probe], network_mode="host", remove=True)
    assert b"reached-registry" in control

    result = runner.run(image, RepoCheck(name="sneaky", run=probe, timeout="30s"))

    assert result.exit_code != 0
    assert "reached-registry" not in result.output_tail
    assert "can't connect" in result.output_tail


def test_check_runs_under_its_cpu_and_memory_limits(runner, image):
    # cgroup v2 files first, else v1's: the limits as the kernel enforces them inside the container.
    read_limits = (
        "if [ -f /sys/fs/cgroup/memory.max ]; then cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max; "
        "else cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi"
    )
    result = runner.run(image, RepoCheck(name="limits", run=read_limits, timeout="30s", cpus=0.5, memory="64m"))

    assert result.passed, result.output_tail
    memory, cpu = result.output_tail.splitlines()
    assert int(memory) == 64 * 1024 * 1024
    quota, period = (int(x) for x in cpu.split())
    assert quota / period == pytest.approx(0.5)


def test_image_without_a_shell_fails_the_check_with_a_reason(runner, shell_less_image):
    result = runner.run(shell_less_image, RepoCheck(name="unit", run="true", timeout="30s"))

    assert not result.passed and result.exit_code is None
    gate = repo_checks_gate([result])
    assert gate.status is GateStatus.BLOCK
    assert "check unit failed (did not start)" in gate.reason and "/bin/sh" in gate.reason


def test_run_all_stops_at_the_first_failure(runner, image):
    checks = [RepoCheck(name="a", run="true"), RepoCheck(name="b", run="exit 2"), RepoCheck(name="c", run="true")]
    events: list[str] = []

    results = runner.run_all(image, checks, on_event=lambda message, **data: events.append(message))

    assert [(r.name, r.exit_code) for r in results] == [("a", 0), ("b", 2)]
    assert "check b failed (exit 2)" in " ".join(events)
