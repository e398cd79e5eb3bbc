"""`mainline demo --story canary --once` on real Docker, HAProxy and Prometheus: under steady
load, v2 passes its canary; v3 (healthy /health, 20% of `GET /` answered 500) fails its canary
at weight 10, the baseline keeps serving, master is reverted and equals production."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from sandbox.canary_kit import free_port
from sandbox.demo_setup import DemoPorts

pytestmark = pytest.mark.docker


def test_canary_story_holds_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo's state goes to ./.mainline/demo
    ports = DemoPorts(bot=free_port(), lb=free_port(), github=free_port(), slack=free_port())
    monkeypatch.setattr("sandbox.demo.DemoPorts", lambda bot: ports)  # the CLI takes only the bot's port
    result = CliRunner().invoke(main, ["demo", "--story", "canary", "--once", "--port", str(ports.bot)])
    out = result.output
    assert result.exit_code == 0, out
    for line in ("✔ v2 passed its canary and is live", "✔ v2's canary was judged from real traffic",
                 "✔ v3 was stopped by its canary and reverted", "✔ v3 failed at weight 10: canary 5xx",
                 "✔ production serves v2", '✔ the revert pull request “Revert "Speed up the page"” is merged',
                 "(in_sync: True)", "✔ the PR comment carries the canary's numbers", "the canary story held"):
        assert line in out, out
