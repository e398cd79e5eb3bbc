"""The published JSON Schema of .github/deploy.yml: committed at a stable path, never drifting from
the model, valid for the documented example; and `mainline config validate` naming bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.config import SCHEMA_PATH, json_schema, load_config

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
    assert SCHEMA_PATH == Path(__file__).parents[2] / "bot" / "deploy.schema.json"
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
