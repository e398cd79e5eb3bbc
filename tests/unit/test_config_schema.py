"""The published JSON Schema of .github/deploy.yml: committed at a stable path, never drifting from
the model, valid for the documented example; and `mainline config validate` naming bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.config import SCHEMA_PATH, ConfigError, json_schema, load_config, parse_config

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "deploy.example.yml"

BROKEN = """\
service: web
environments:
  production:
    target: kubernetes
    replicas: 0
health: {path: /health, bake: soon}
migrations: {policy: sometimes}
"""


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_models_schema():
    assert Path(__file__).parents[2] / "bot" / "deploy.schema.json" == SCHEMA_PATH
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema(), (
        "bot/deploy.schema.json drifted from bot/config.py: regenerate it with "
        "`python -c 'from bot.config import write_schema; write_schema()'` and commit it")


def test_schema_accepts_the_documented_example():
    data = yaml.safe_load(EXAMPLE.read_text())
    assert list(validator().iter_errors(data)) == []
    config = load_config(EXAMPLE)
    assert config.environments["production"].window.timezone == "America/Toronto"
    assert config.required_contexts == ["ci/build"] and config.depends_on == ["api"]


def test_schema_refuses_what_the_model_refuses():
    errors = {"/".join(map(str, e.absolute_path)) for e in validator().iter_errors(yaml.safe_load(BROKEN))}
    assert {"environments/production/target", "environments/production/replicas", "migrations/policy"} <= errors


def test_config_validate_prints_each_error_with_its_line_and_exits_1(tmp_path):
    path = tmp_path / "deploy.yml"
    path.write_text(BROKEN)
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(f"{path}:4: environments.production.target" in line and "line 4" in line for line in lines)
    assert any(f"{path}:5: environments.production.replicas" in line for line in lines)
    assert any(f"{path}:6: health.bake" in line and "not a duration" in line for line in lines)
    assert any(f"{path}:7: migrations.policy" in line for line in lines)


def test_config_validate_names_the_line_of_broken_yaml(tmp_path):
    path = tmp_path / "deploy.yml"
    path.write_text("service: web\nenvironments:\n  production: [unclosed\n")
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 1
    assert "not valid YAML" in result.output and "line 4" in result.output


def test_config_validate_accepts_the_example():
    result = CliRunner().invoke(main, ["config", "validate", str(EXAMPLE)])
    assert result.exit_code == 0
    assert "ok (service web, environments: production, staging)" in result.output


HOSTILE = [
    ({"service": "web.app"}, "service"),
    ({"service": "web", "environments": {"../../api-production": {}}}, "environments"),
    ({"service": "web", "environments": {"production": {"listen": "127.0.0.1:80\nlisten x"}}},
     "environments/production/listen"),
    ({"service": "web", "environments": {"production": {"listen": "localhost:80"}}}, "environments/production/listen"),
    ({"service": "web", "health": {"path": "@127.0.0.1:9/x"}}, "health/path"),
    ({"service": "web", "health": {"path": "//evil/x"}}, "health/path"),
    ({"service": "web", "checks": [{"name": "u", "run": "true", "memory": "512Mi"}]}, "checks/0/memory"),
    ({"service": "web", "checks": [{"name": "u", "run": "true", "memory": "0"}]}, "checks/0/memory"),
    ({"service": "web", "checks": [{"name": "u", "run": "true", "cpus": 0}]}, "checks/0/cpus"),
    ({"service": "web", "depends_on": [f"s{i}" for i in range(21)]}, "depends_on"),
    ({"service": "web", "migrations": {"paths": ["x"] * 21}}, "migrations/paths"),
    ({"service": "web", "environments": {"production": {"branches": ["feature branch"]}}},
     "environments/production/branches/0"),
]


@pytest.mark.parametrize("data, where", HOSTILE, ids=[where for _, where in HOSTILE])
def test_model_and_schema_both_refuse_hostile_values(data, where):
    with pytest.raises(ConfigError):
        parse_config(yaml.safe_dump(data))
    errors = {"/".join(map(str, e.absolute_path)) for e in validator().iter_errors(data)}
    assert where in errors, errors


def test_names_listen_and_limits_that_are_fine_pass_both():
    data = {"service": "web_2-x", "branch": "release/2026.1",
            "environments": {"production": {"listen": "[::1]:8080", "branches": ["release/*", "hotfix-[0-9]*"]},
                             "qa_1": {"listen": "0.0.0.0:9000"}},
            "health": {"path": "/status?full=1"},
            "checks": [{"name": "unit tests", "run": "pytest -q", "cpus": 0.5, "memory": "64m", "timeout": "2h"}]}
    assert list(validator().iter_errors(data)) == []
    config = parse_config(yaml.safe_dump(data))
    assert config.checks[0].limits() == (0.5, 64 * 1024 * 1024, 7200.0)
    assert config.environments_for("release/2026.1") == ["production"]
