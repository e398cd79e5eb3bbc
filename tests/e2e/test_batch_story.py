"""`mainline demo --story batch --once` on real Docker, HAProxy and git: three PRs merged within
seconds coalesce into one release and the middle one breaks /health. The release is rolled back,
bisected on shadow replicas, and only the middle PR is reverted: master holds exactly one revert,
of its merge commit; production serves the other two; master and production agree."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from sandbox.canary_kit import free_port

pytestmark = pytest.mark.docker


def test_batch_story_holds_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo's state goes to ./.mainline/demo
    from sandbox import demo_setup

    ports = demo_setup.DemoPorts(bot=free_port(), lb=free_port(), github=free_port(), slack=free_port())
    monkeypatch.setattr("sandbox.demo.DemoPorts", lambda bot: ports)  # the CLI builds ports from --port
    result = CliRunner().invoke(main, ["demo", "--story", "batch", "--once", "--port", str(ports.bot)])
    out = result.output
    assert result.exit_code == 0, out
    for line in ("✔ v1 is live", "✔ the release was rolled back and reverted",
                 "✔ bisection named PR #2's merge", "✔ one release carried the three PRs; #1 and #3 are held back",
                 "✔ master has exactly one revert, of PR #2's merge commit",
                 "✔ production serves PR #1's and PR #3's pages", "(in_sync: True)",
                 "✔ PR #2 was told it broke production and was reverted, with the evidence",
                 "✔ PRs #1 and #3 were told they were held back and are live",
                 "✔ the Slack card tells the story: rounds, culprit, held back", "the batch story held"):
        assert line in out, out
