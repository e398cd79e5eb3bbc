"""Issue 9, the repository config as hostile input: attacks 4, 5, 7, 9, 10 and 12.

Each hostile deploy.yml goes through the public surface: `mainline config validate` (click's
runner) and, for the haproxy injection and the alias bomb, a real merge through the local GitHub
stand-in into the bot. Each is refused within a second or two, with a message naming its line,
and nothing is deployed: no load balancer config is written, master keeps only the merge.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from docker.errors import APIError

from bot.cli import main
from bot.config import RepoCheck, parse_config
from bot.infra.check_runner import ContainerCheckRunner
from bot.infra.targets.docker.haproxy import HAProxy, UnsafeConfigError
from checks.repo_checks import repo_checks_gate
from tests.conftest import DEPLOY_YML
from tests.e2e.test_invalid_config_merge import REPO, bot, deliver, sandbox  # noqa: F401  (fixtures)

HEAD = """\
service: webapp
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    replicas: 1
"""

# Attack 4: a value that ends in a valid port, with a whole haproxy section before it.
LISTEN_INJECTION = HEAD + (
    '    listen: "127.0.0.1:18081\\n\\nlisten docker\\n    bind 127.0.0.1:2375\\n'
    '    server s unix@/var/run/docker.sock\\n# 127.0.0.1:18081"\n')

# Attack 9: 338 bytes that expand 9-fold per level: 9**9 strings if anything built them.
ALIAS_BOMB = "service: webapp\n" + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True))


# How fast each refusal is: bench/hostile_config.py prints it. Here, what is refused and why.
def validate(tmp_path: Path, text: str, name: str = "deploy.yml") -> tuple[int, str]:
    path = tmp_path / name
    path.write_text(text)
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def assert_refused(tmp_path: Path, text: str, line: int, *words: str) -> str:
    code, output = validate(tmp_path, text)
    assert code == 1, output
    assert f"deploy.yml:{line}:" in output and f"line {line}" in output, output
    for word in words:
        assert word in output, output
    assert "Traceback" not in output
    return output


def merge_config(sandbox, text: str, title: str) -> tuple[str, object]:  # noqa: F811
    """A PR changing deploy.yml to `text`, merged; returns the merge sha and its webhook."""
    sandbox.create_branch(REPO, "attack", sandbox.head(REPO, "master"))
    sandbox.push_commit(REPO, "attack", {".github/deploy.yml": text}, title)
    number = sandbox.open_pull(REPO, "attack", "master", title)
    sha = sandbox.merge_pull(REPO, number)
    [merged] = [d for d in sandbox.deliveries if d.event == "pull_request" and d.action == "closed"]
    return sha, merged


def config_check(sandbox, sha: str) -> str:  # noqa: F811
    runs = requests.get(f"{sandbox.url}/repos/{REPO}/commits/{sha}/check-runs",
                        headers={"Authorization": "token reader"}, timeout=10).json()["check_runs"]
    [run] = [r for r in runs if r["name"] == "mainline/config"]
    assert (run["status"], run["conclusion"]) == ("completed", "failure")
    return run["output"]["title"] + "\n" + run["output"]["summary"]


def assert_nothing_deployed(wired, state_dir: Path, sandbox, sha: str) -> None:  # noqa: F811
    assert wired.pipeline.status() == []
    assert not (state_dir / "haproxy").exists(), "a load balancer config was written"
    assert sandbox.head(REPO, "master") == sha, "the bot changed master"


def test_attack_04_listen_newline_injection_is_refused(tmp_path, sandbox, bot):  # noqa: F811
    output = assert_refused(tmp_path, LISTEN_INJECTION, 8, "environments.production.listen",
                            "IP address and a port")
    assert "\nlisten docker" not in output  # the value is quoted, never echoed raw
    for value in ("127.0.0.1:80 ", " 127.0.0.1:80", "localhost:80", "*:80", "127.0.0.1:0", "127.0.0.1:65536",
                  "127.0.0.1:80#x", "[::1]:80\\n", "999.0.0.1:80", "[fe80::1%eth0]:80", "127.0.0.1"):
        assert_refused(tmp_path, HEAD + f'    listen: "{value}"\n', 8, "listen")
    for value in ("127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80"):
        assert validate(tmp_path, HEAD + f'    listen: "{value}"\n')[0] == 0

    wired, client = bot
    sha, merged = merge_config(sandbox, LISTEN_INJECTION, "Expose the Docker socket")
    deliver(client, wired, merged)
    text = config_check(sandbox, sha)
    assert "line 8: environments.production.listen" in text and "IP address and a port" in text
    assert_nothing_deployed(wired, tmp_path / "state", sandbox, sha)


def test_attack_04_the_load_balancer_refuses_an_injected_listen_even_past_the_schema(tmp_path):
    lb = HAProxy(tmp_path, "webapp", "production", "127.0.0.1:18081")
    lb.listen = "127.0.0.1:18081\nlisten docker\n    bind 127.0.0.1:2375"  # as if the schema let it in
    with pytest.raises(UnsafeConfigError, match="IP address and a port"):
        lb.ensure_running()
    with pytest.raises(UnsafeConfigError, match="listen"):
        HAProxy(tmp_path, "webapp", "production", "127.0.0.1:1\nprogram x")
    with pytest.raises(UnsafeConfigError, match="control character"):
        lb.command("show info\nshutdown frontend webapp")
    assert not lb.config_path.exists()


def test_attack_05_environment_name_path_traversal_is_refused(tmp_path):
    for name in ("../../api-production", "prod/x", "Production", "prod.x", "-prod", "p" * 32, "prod\\nx", ""):
        text = HEAD.replace("  production:\n", f'  "{name}":\n')
        assert_refused(tmp_path, text, 4, "environments", "names are 1 to 31 characters")
    assert_refused(tmp_path, HEAD.replace("service: webapp", "service: ../api"), 1, "service", "names are")
    assert_refused(tmp_path, HEAD.replace("service: webapp", "service: web.app"), 1, "service")

    # The load balancer re-checks: its files never leave the state dir, whatever reaches it.
    for service, environment in (("api", "../../api-production"), ("../x", "production"), ("a", "b\nc")):
        with pytest.raises(UnsafeConfigError, match="names are"):
            HAProxy(tmp_path / "state", service, environment, "127.0.0.1:18081")
    assert not (tmp_path / "state").exists() and not (tmp_path / "api-production").exists()


def test_attack_07_health_path_pointing_at_another_host_is_refused(tmp_path):
    hostile = ["@127.0.0.1:9/latest/meta-data", "/@127.0.0.1:9/x", "//169.254.169.254/latest", "health",
               "/x\\\\@evil", "/x y", "/x\\n/y", "/x\\t", "/#frag", "/" + "a" * 300, "/caf\u00e9"]
    for path in hostile:
        output = assert_refused(tmp_path, HEAD + f'health: {{path: "{path}", bake: 1s}}\n', 8,
                                "health.path", "must start with a single '/'")
        assert "\n/y" not in output
    for path in ("/health", "/", "/status?full=1", "/v1/health-check.json"):
        assert validate(tmp_path, HEAD + f'health: {{path: "{path}"}}\n')[0] == 0


def test_attack_09_yaml_alias_bomb_is_refused(tmp_path, sandbox, bot):  # noqa: F811
    assert len(ALIAS_BOMB.encode()) < 400
    tracemalloc.start()
    try:
        output = assert_refused(tmp_path, ALIAS_BOMB, 2, "anchors (&a) are not allowed")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"
    assert "(root)" in output
    assert_refused(tmp_path, "service: webapp\ndepends_on: [*x]\n", 2, "aliases (*x) are not allowed")
    assert_refused(tmp_path, "service: webapp\nx: " + "[" * 5000 + "]" * 5000 + "\n", 2, "nest")
    deep = "service: webapp\n" + "".join(" " * i + f"k{i}:\n" for i in range(40))
    assert_refused(tmp_path, deep, 14, "nested deeper than 12 levels")  # the 13th mapping starts at k12
    big = "service: webapp\n" + "".join(f"# padding line {i:06d} " + "x" * 80 + "\n" for i in range(3000))
    assert_refused(tmp_path, big, big.encode()[:256 * 1024].count(b"\n") + 1, "the limit is 256 KB")
    assert_refused(tmp_path, "service: webapp\nx: 1" + "1" * 5000 + "\n", 2, "not valid YAML")

    wired, client = bot
    sha, merged = merge_config(sandbox, ALIAS_BOMB, "Lots of lols")
    deliver(client, wired, merged)
    text = config_check(sandbox, sha)
    assert "line 2" in text and "anchors (&a) are not allowed" in text
    assert_nothing_deployed(wired, tmp_path / "state", sandbox, sha)


def test_attack_10_backtracking_migration_globs_match_in_linear_time(tmp_path, local_repo, monkeypatch):
    evil = "**a" * 12
    config = DEPLOY_YML.format(service="web", port=18080) + f"migrations: {{policy: approve, paths: ['{evil}']}}\n"
    code, output = validate(tmp_path, config)
    assert code == 0, output
    base = local_repo.commit("config", {".github/deploy.yml": config})
    local_repo.commit("long names", {f"{'a' * n}b.txt": "x\n" for n in range(32, 120, 8)})
    monkeypatch.chdir(local_repo.work)
    result = CliRunner().invoke(main, ["migrations", "check", "--base", base])
    assert result.exit_code == 0 and "no migrations" in result.output, result.output

    # Branch globs too; and the number and length of globs are bounded, naming the line.
    staging = "    branches: ['" + "*a" * 40 + "c']\n"
    assert parse_config(HEAD + staging).environments_for("a" * 5000) == []
    many = "migrations: {paths: [" + ", ".join(f"'db/{i}/*.sql'" for i in range(21)) + "]}\n"
    assert_refused(tmp_path, HEAD + many, 8, "migrations.paths", "at most 20")
    assert_refused(tmp_path, HEAD + "    branches: ['" + "a" * 101 + "']\n", 8, "branch globs are 1 to 100")


@pytest.mark.parametrize("limit, line_words", [
    ("cpus: 0", ("checks.0.cpus", "greater than or equal to 0.1")),
    ("cpus: 64", ("checks.0.cpus", "less than or equal to 16")),
    ('memory: "0"', ("checks.0.memory", "whole number and one unit")),
    ("memory: 0", ("checks.0.memory",)),
    ("memory: 512Mi", ("checks.0.memory", "Kubernetes units")),
    ("memory: 1m", ("checks.0.memory", "between 16m and 64g")),
    ("memory: 128g", ("checks.0.memory", "between 16m and 64g")),
    ("timeout: 100000h", ("checks.0.timeout", "between 1ms and 2h")),
    ("timeout: .inf", ("checks.0.timeout", "not a duration")),
    ("timeout: -1", ("checks.0.timeout", "not a duration")),
])
def test_attack_12_unbounded_repo_check_limits_are_refused(tmp_path, limit, line_words):
    text = HEAD + "checks:\n  - name: unit\n    run: pytest -q\n    " + limit + "\n"
    assert_refused(tmp_path, text, 11, *line_words)


class _NoDocker:
    """A Docker client that must not be reached: a bad limit is refused before any container."""

    @property
    def containers(self):
        raise AssertionError("a container was created for a check with bad limits")


@pytest.mark.parametrize("fields", [{"memory": "512Mi"}, {"memory": "0"}, {"cpus": 0.0}, {"timeout": "100000h"}])
def test_attack_12_a_bad_limit_that_reaches_the_runner_fails_the_deploy_with_a_reason(fields):
    # As if the schema had let it through: a failed check with a reason, never "transient" forever.
    check = RepoCheck.model_construct(**{"name": "unit", "run": "true", "timeout": "10m", "cpus": 1.0,
                                         "memory": "512m", **fields})
    [result] = ContainerCheckRunner(client=_NoDocker()).run_all("img:1", [check])
    verdict = repo_checks_gate([result])
    assert not verdict.passed
    assert "check unit failed (did not start)" in verdict.reason
    assert "invalid limits for check unit in .github/deploy.yml" in verdict.reason


class _RefusingDocker:
    """Docker answering 400 to the container a check asks for, as it does to settings it refuses."""

    class containers:  # docker-py's attribute name
        @staticmethod
        def create(*_args, **_kwargs):
            response = requests.Response()
            response.status_code = 400
            raise APIError("400 Client Error", response=response, explanation="invalid memory limit")


def test_attack_12_settings_docker_refuses_fail_the_check_instead_of_retrying_forever():
    [result] = ContainerCheckRunner(client=_RefusingDocker()).run_all("img:1", [RepoCheck(name="unit", run="true")])
    verdict = repo_checks_gate([result])
    assert not verdict.passed and "invalid memory limit" in verdict.reason
