"""People step into a running canary: `/promote` and `/abort` on a pull request (deployers only,
as `/rollback`), `mainline canary promote|pause|abort`, and a paused canary shown by `status`
and the API. The running canary reads each command once (bot/engine/canary.py); what it does
with them is in test_canary_rollout.py."""

from __future__ import annotations

from bot.engine.canary import control
from tests.conftest import authed
from tests.handlers.test_github_issue_comment import command

CANARY = """\
    strategy: canary
    canary: {steps: [{weight: 10, pause: 5s}], analysis: {interval: 1s}}
"""


def canary_world(world) -> int:
    """The service rolls out by canary, and its first deploy is mid-canary (as the worker leaves it)."""
    text = type(world).config_text(world).replace("    replicas: 1\n", "    replicas: 1\n" + CANARY, 1)
    world.config_text = lambda: text
    sha = world.sandbox.push_commit(world.repo, "master", {".github/deploy.yml": world.config_text()}, "Canary")
    for delivery_id in world.relay():
        world.wired.process_delivery(delivery_id)
    store = world.wired.store
    svc = store.service(world.service)
    deploy = next(d for d in store.deploys(svc.id, "production") if d.sha == sha)
    store.update_deploy(deploy.id, None, state="rolling_out")
    return deploy.id


def commands_of(world, deploy_id: int) -> list[tuple[str, str]]:
    return [(e.data["action"], e.by) for e in world.wired.store.events(deploy_id) if e.kind == "canary_command"]


def test_deployers_abort_and_promote_from_the_pull_request_others_are_refused(world):
    deploy_id = canary_world(world)
    next_command = control(world.wired.store, deploy_id)
    number = world.open_pr("feature/x", {"NOTES.md": "x\n"}, "X")

    refused_id, refused = command(world, number, "/abort", "hubot")  # may push, is no deployer
    abort_id, outcome = command(world, number, "/abort", "octocat")
    promote_id, _ = command(world, number, "/promote production", "octocat")

    assert world.reactions(refused_id) == ["-1"] and "refused" in refused
    assert world.reactions(abort_id) == ["+1"] and world.reactions(promote_id) == ["+1"]
    replies = world.replies(number)
    assert "not a deployer" in replies[0]
    assert "aborting the canary of" in replies[1] and "rolled back and reverted" in replies[1]
    assert "promoting the canary of" in replies[2]
    assert commands_of(world, deploy_id) == [("abort", "github:octocat"), ("promote", "github:octocat")]
    assert [next_command(), next_command(), next_command()] == ["abort", "promote", None]
    assert "done" in outcome


def test_cli_pauses_the_canary_and_status_shows_it_paused(world, mainline, monkeypatch):
    deploy_id = canary_world(world)
    for name, value in (("MAINLINE_DATABASE_URL", world.settings.database_url),
                        ("MAINLINE_STATE_DIR", str(world.settings.state_dir)),
                        ("GITHUB_API_URL", world.settings.github_api_url), ("GITHUB_TOKEN", "ghp_sandbox")):
        monkeypatch.setenv(name, value)

    result = mainline("canary", "pause", world.service)

    assert result.exit_code == 0, result.output
    assert "holds its weight until promoted or aborted" in result.output
    assert commands_of(world, deploy_id) == [("pause", "cli")]
    # What the worker's canary records when it obeys (bot/infra/targets/docker/canary.py).
    world.wired.store.add_event(deploy_id, world.service, "production", "canary", "canary paused at step 1 (10%)",
                                data={"step": 1, "weight": 10, "verdict": "paused", "metrics": []})
    [row] = [r for r in world.wired.pipeline.status(world.service) if r["environment"] == "production"]
    assert row["queue"][0]["canary"] == {"step": 1, "weight": 10, "verdict": "paused", "paused": True,
                                         "message": "canary paused at step 1 (10%)"}
    page = authed(world.client, world.wired).get("/", headers={"Accept": "text/html"})
    assert "canary step 1 at 10%: paused" in page.get_data(as_text=True)
    staging = mainline("canary", "promote", world.service, "--env", "staging")
    assert staging.exit_code != 0 and "rolls out by rolling, not by canary" in staging.output
    assert mainline("canary", "abort", world.service, "--env", "qa").exit_code != 0
