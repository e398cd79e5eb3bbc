"""deploy.yml's app keys (env, secrets, roles, resources, tls, release): the model and the JSON
Schema both know them and refuse hostile values; `mainline config validate` names the line of
each rule the schema cannot say (one web role, reserved names)."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.config import SCHEMA_PATH, ConfigError, parse_config

GOOD = {"service": "web", "environments": {"production": {
    "env": {"APP_ENV": "production", "LOG_LEVEL": "info"},
    "secrets": {"DATABASE_URL": "aws-secretsmanager:prod/web/database-url", "SECRET_KEY": "aws-ssm:/prod/web/key",
                "SENTRY_DSN": "file:sentry-dsn"},
    "roles": {"web": {"command": "gunicorn app:app", "replicas": 2, "http": True},
              "worker": {"command": "python -m app.worker", "replicas": 1, "stop_signal": "SIGINT",
                         "stop_grace": "30s", "min_ready": "5s"}},
    "resources": {"cpus": 1, "memory": "512m"},
    "tls": {"certificate": "web.pem", "redirect": True, "http_listen": "127.0.0.1:8081"},
    "release": {"command": "python manage.py migrate", "approval": "required", "timeout": "15m"}}}}


def _with(**production) -> dict:
    return {"service": "web", "environments": {"production": production}}


HOSTILE = [
    (_with(env={"app_env": "x"}), "environments/production/env"),
    (_with(env={"APP_ENV": "a\nb"}), "environments/production/env/APP_ENV"),
    (_with(env={"APP_ENV": "x" * 5000}), "environments/production/env/APP_ENV"),
    (_with(secrets={"DB": "vault:prod/db"}), "environments/production/secrets/DB"),
    (_with(secrets={"DB": "file:../../etc/shadow"}), "environments/production/secrets/DB"),
    (_with(secrets={"DB": "file:/etc/shadow"}), "environments/production/secrets/DB"),
    (_with(secrets={"DB": "file:team/../../x"}), "environments/production/secrets/DB"),
    (_with(roles={"Web Role": {"http": True}}), "environments/production/roles"),
    (_with(roles={"web": {"http": True, "replicas": 51}}), "environments/production/roles/web/replicas"),
    (_with(roles={"web": {"http": True, "stop_signal": "SIGSEGV"}}), "environments/production/roles/web/stop_signal"),
    (_with(roles={"web": {"http": True, "command": "x" * 2000}}), "environments/production/roles/web/command"),
    (_with(resources={"memory": "0"}), "environments/production/resources/memory"),
    (_with(resources={"cpus": 64}), "environments/production/resources/cpus"),
    (_with(tls={"certificate": "../web.pem"}), "environments/production/tls"),
    (_with(tls={"certificate": "web.pem", "http_listen": "localhost:80"}), "environments/production/tls"),
    (_with(release={"command": "migrate", "approval": "maybe"}), "environments/production/release"),
    (_with(release={"command": "migrate\u0000"}), "environments/production/release"),
]


# An optional block (tls, release) is `anyOf: [block, null]` in the schema, which names the block.


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def test_the_model_and_the_schema_accept_a_real_app():
    assert list(validator().iter_errors(GOOD)) == []
    app = parse_config(yaml.safe_dump(GOOD)).environments["production"].app_spec()
    assert [r.name for r in app.others] == ["worker"] and app.web(2).command == ("gunicorn", "app:app")
    assert dict(app.secrets)["SENTRY_DSN"] == "file:sentry-dsn" and app.memory == 512 * 1024 ** 2
    assert app.release is not None and app.release.approval and app.release.timeout == 900.0


@pytest.mark.parametrize("data, where", HOSTILE, ids=[where for _, where in HOSTILE])
def test_model_and_schema_both_refuse_hostile_app_values(data, where):
    with pytest.raises(ConfigError):
        parse_config(yaml.safe_dump(data))
    errors = {"/".join(map(str, e.absolute_path)) for e in validator().iter_errors(data)}
    assert where in errors, errors


@pytest.mark.parametrize("production, says", [
    ({"env": {"PORT": "80"}}, "PORT is set by Mainline"),
    ({"env": {"LD_PRELOAD": "/x.so"}}, "LD_PRELOAD is set by Mainline"),
    ({"env": {"DB": "x"}, "secrets": {"DB": "file:db"}}, "DB is both in env and in secrets"),
    ({"roles": {"web": {"http": True}, "api": {"http": True}}}, "exactly one role takes traffic"),
    ({"roles": {"worker": {"replicas": 1}}}, "exactly one role takes traffic"),
    ({"tls": {"certificate": "web.pem", "redirect": True}}, "tls.redirect needs tls.http_listen"),
    ({"release": {"command": "echo 'unclosed"}}, "does not parse as shell words"),
    ({"target": "ecs", "secrets": {"DB": "file:db"}}, "secrets apply to the docker target"),
])
def test_config_validate_names_the_line_of_each_app_rule(tmp_path, production, says):
    path = tmp_path / "deploy.yml"
    path.write_text(yaml.safe_dump(_with(**production), sort_keys=False))
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 1, result.output
    assert says in result.output and "line " in result.output, result.output


def test_the_preview_line_shows_plain_env_and_secret_references():
    from bot.config_app import app_summary

    line = app_summary(parse_config(yaml.safe_dump(GOOD)).environments["production"])
    assert "APP_ENV=production" in line and "DATABASE_URL from aws-secretsmanager:prod/web/database-url" in line
    assert "worker x1" in line and "web x2 (http)" in line and "(approval required)" in line
