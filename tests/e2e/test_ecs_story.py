"""`mainline demo --story ecs --once`: the bot (web + worker processes) deploys to ECS on moto
and the stateful ECS stand-in: v1 and v2 live; v3's alarm rolls it back to a task definition
that keeps the current memory, and it is reverted; v4's unpullable image fails it without a
revert, `status` saying why master is ahead; deployed again once pullable, v4 is live."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from sandbox.canary_kit import free_port

pytestmark = pytest.mark.docker


def test_ecs_story_holds_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo's state goes to ./.mainline/demo
    from sandbox import demo_setup

    ports = demo_setup.DemoPorts(bot=free_port(), lb=free_port(), github=free_port(), slack=free_port())
    monkeypatch.setattr("sandbox.demo.DemoPorts", lambda bot: ports)
    result = CliRunner().invoke(main, ["demo", "--story", "ecs", "--once", "--port", str(ports.bot)])
    out = result.output
    assert result.exit_code == 0, out
    for line in ("✔ ECS service webapp runs 127.0.0.1:5000/webapp:", "✔ v3 was rolled back and reverted",
                 "a new revision that keeps 1024 MB", "CannotPullContainerError", "✔ nothing was reverted",
                 "✔ v4 failed on the infrastructure, the stopped task's reason shown: infrastructure: image-pull: "
                 "the image could not be pulled", "✔ production is still on v2",
                 "ahead because of an infrastructure failure", "equals production", "the ECS story held",
                 "✔ the deploy's Slack thread carries the stopped task's reason"):
        assert line in out, out
    assert "verification failed: CloudWatch alarm webapp-5xx is in ALARM" in out and "did not clear" not in out
