"""A hostile `ecs:` block is refused by `mainline config validate`, naming the key: an external id
or role ARN carrying newlines or another resource, too many services, a run-away timeout, a
listener without its second target group."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main

BASE = """\
service: web
environments:
  production:
    target: ecs
    ecs:
      cluster: prod
{extra}"""
ONE = "      service: web\n      container: web\n"


@pytest.mark.parametrize(("extra", "key"), [
    (ONE + "      assume_role: {arn: 'arn:aws:iam::123456789012:role/x\\nAdministratorAccess'}\n", "assume_role.arn"),
    (ONE + "      assume_role: {arn: 'arn:aws:s3:::bucket'}\n", "assume_role.arn"),
    (ONE + "      assume_role: {arn: 'arn:aws:iam::123456789012:role/x', external_id: \"a'; rm -rf /\"}\n",
     "assume_role.external_id"),
    ("      services: [" + ", ".join(f"{{service: s{i}, container: c}}" for i in range(11)) + "]\n", "services"),
    (ONE + "      timeout: 999999h\n", "timeout"),
    (ONE + "      listener_arn: arn:aws:elasticloadbalancing:us-east-1:1:listener/app/x/y/z\n", "ecs"),
    (ONE + "      strategy: CODE_DEPLOY\n", "strategy"),
])
def test_hostile_ecs_blocks_fail_config_validate(tmp_path, extra, key):
    path = tmp_path / "deploy.yml"
    path.write_text(BASE.format(extra=extra))

    result = CliRunner().invoke(main, ["config", "validate", str(path)])

    assert result.exit_code == 1, result.output
    assert "environments.production.ecs" in result.output and key.split(".")[0] in result.output
