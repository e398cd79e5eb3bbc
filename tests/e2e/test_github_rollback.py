"""Rolling back brings the production branch back in line, through a revert pull request on the
local GitHub stand-in; a revert that conflicts locks the service and leaves a draft for a person.
On Docker, the registry and HAProxy."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.e2e.github_world import SECRET, TOKEN

pytestmark = pytest.mark.docker


def cli_env(world) -> dict[str, str]:
    """The settings `mainline` reads from the environment, pointing at this world."""
    s = world.settings
    return {"MAINLINE_DATABASE_URL": s.database_url, "MAINLINE_QUEUE_URL": s.queue_url,
            "MAINLINE_STATE_DIR": str(s.state_dir), "GITHUB_API_URL": world.sandbox.url, "GITHUB_TOKEN": TOKEN,
            "GITHUB_WEBHOOK_SECRET": SECRET, "MAINLINE_GITHUB_WRITE_INTERVAL": "0"}


def pulls(world) -> dict[str, object]:
    return {p.title: p for p in world.sandbox.repo(world.repo).pulls.values()}


def tree(world, sha: str) -> str:
    return world.sandbox.repo(world.repo).git.commit(sha).tree


def test_manual_rollback_restores_v1_and_reverts_v2_on_master_by_pull_request(world):
    v1 = world.first_release()
    number, v2 = world.merge_pr("octocat/v2", world.app_files("v2"), "Add the v2 page")
    world.relay()
    world.work()
    assert world.serves() == f"{world.service} v2"

    result = CliRunner().invoke(main, ["rollback", world.service, "--by", "github:octocat"], env=cli_env(world))
    assert result.exit_code == 0, result.output
    assert f"rolling back {world.service} in production: {v2[:12]} -> {v1[:12]}" in result.output
    world.work()  # the worker picks up the rollback the CLI queued
    world.relay()  # the revert's merge, as GitHub tells it
    world.work()

    assert world.deploys()[v2]["state"] == "reverted"
    assert world.serves() == f"{world.service} v1"
    revert = pulls(world)['Revert "Add the v2 page"']
    assert revert.merged and revert.merged_by == "mainline[bot]" and not revert.draft
    head = world.head()
    assert head == revert.merge_commit_sha and tree(world, head) == tree(world, v1)
    status = world.status()
    assert status["in_sync"] is True and status["live"]["sha"] == head and status["locked"] is None
    assert any(f"reverted by #{revert.number}" in body for body in world.replies(number))


def test_a_conflicting_revert_fails_locks_and_leaves_a_draft_listing_the_files(world):
    world.first_release()
    number, v2 = world.merge_pr("hubot/v2", world.app_files("v2", mode="unhealthy"), "Rework the health check",
                                author="hubot")
    world.relay()
    # Before the bad release is rolled back, master moves on over the very lines it changed.
    world.sandbox.push_commit(world.repo, "master", {"app.conf": "version=hotfix\nhealth=ok\nroot=200\n"},
                              "Hotfix the app config")
    world.lose_webhooks()  # keep the hotfix out of this story: only the revert is under test
    world.work()

    deploy = world.deploys()[v2]
    assert deploy["state"] == "failed"
    assert "conflicts in app.conf" in deploy["reason"] and "revert by hand" in deploy["reason"]
    assert world.serves() == f"{world.service} v1"  # production was rolled back all the same
    locked = world.status()["locked"]
    assert locked["by"] == "mainline" and "app.conf" in locked["reason"]
    draft = pulls(world)['Revert "Rework the health check"']
    assert draft.draft and draft.state == "open" and not draft.merged
    assert "- `app.conf`" in draft.body and "A person must finish this revert" in draft.body
    assert any("could not revert" in body and "`app.conf`" in body and f"#{draft.number}" in body
               for body in world.replies(number))
