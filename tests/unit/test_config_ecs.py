"""The `ecs:` block: `target: ecs` without it fails `mainline config validate` (#17 item 6), and
its keys (timeout, assume_role, several services, strategy) are checked like every other value."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import ConfigError, parse_config

BASE = """\
service: web
environments:
  production:
    target: ecs
{ecs}"""


def ecs_block(body: str) -> str:
    return BASE.format(ecs="    ecs:\n" + "".join(f"      {line}\n" for line in body.splitlines()))


def test_target_ecs_without_an_ecs_block_fails_config_validate_naming_the_line(tmp_path):
    path = tmp_path / "deploy.yml"
    path.write_text(BASE.format(ecs=""))

    result = CliRunner().invoke(main, ["config", "validate", str(path)])

    assert result.exit_code == 1
    assert "environments.production" in result.output and "target: ecs needs an `ecs:` block" in result.output


def test_the_ecs_keys_parse():
    config = parse_config(ecs_block(
        "cluster: prod\ntimeout: 45m\nalarms: [web-5xx]\nstrategy: blue-green\n"
        "assume_role: {arn: 'arn:aws:iam::123456789012:role/mainline-deployer', external_id: acme-7f3a}\n"
        "services:\n  - {service: web, container: web}\n  - {service: worker, container: app}"))
    ecs = config.environments["production"].ecs
    assert ecs is not None
    assert ecs.timeout_seconds == 2700 and ecs.assume_role and ecs.assume_role.external_id == "acme-7f3a"
    assert [(u.service, u.container) for u in ecs.units()] == [("web", "web"), ("worker", "app")]


@pytest.mark.parametrize(("body", "says"), [
    ("cluster: prod", "`service` and `container` are required"),
    ("cluster: prod\nservice: web\ncontainer: web\nservices: [{service: w, container: w}]", "not both"),
    ("cluster: prod\nservices: [{service: w, container: a}, {service: w, container: b}]", "names a service twice"),
    ("cluster: prod\nservice: web\ncontainer: web\ntimeout: 9h", "between"),
    ("cluster: prod\nservice: web\ncontainer: web\nlistener_arn: arn:aws:elasticloadbalancing:l", "both"),
    ("cluster: prod\nservice: web\ncontainer: web\nassume_role: {arn: 'arn:aws:iam::1:role/x'}", "arn"),
    ("cluster: prod\nservice: web\ncontainer: web\nassume_role: {arn: 'arn:aws:iam::123456789012:role/x', "
     "external_id: 'a b'}", "external_id"),
])
def test_bad_ecs_blocks_are_refused(body, says):
    with pytest.raises(ConfigError) as refused:
        parse_config(ecs_block(body))
    assert says in str(refused.value)
