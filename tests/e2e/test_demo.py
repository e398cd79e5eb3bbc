"""`mainline demo --once` plays the whole story through the local GitHub stand-in (every call
checked against GitHub's OpenAPI and octokit's webhook schemas) and the Slack stand-in, with the
bot's real web and worker processes, Docker, the registry and HAProxy; it exits 0 only when
every step held."""

from __future__ import annotations

import socket

import pytest

from sandbox.demo import DemoPorts, run_demo

pytestmark = pytest.mark.docker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_story_holds_end_to_end(tmp_path, capsys):
    ports = DemoPorts(bot=free_port(), lb=free_port(), github=free_port(), slack=free_port())
    code = run_demo(once=True, ports=ports, state_dir=tmp_path / "demo")
    out = capsys.readouterr().out
    assert code == 0, out
    for line in ("✔ the load balancer on", "✔ v2 is live", "✔ v3 was rolled back and reverted",
                 "✔ production serves v2 again",
                 '✔ the revert pull request “Revert "Rework the health check"” is merged',
                 "and production agree (in_sync: True)", "✔ the author of v3 was told on the PR",
                 "✔ the deploy card in Slack #deploys says v3 was reverted",
                 "✔ the dashboard signs octocat in through the local GitHub's OAuth flow",
                 "✔ the API refuses a request with no sign-in and no token",
                 "✔ every GitHub call and webhook matched GitHub's published contract"):
        assert line in out, out
    assert "slack posted card" in out and "slack updated card" in out
