"""PR comment commands: `issue_comment` webhooks as the local GitHub stand-in sends them (octokit's
`issue_comment.created` example refilled with its objects), signed, through the real Flask app,
then processed as the worker does. The bot answers on the stand-in, whose OpenAPI checks are on."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from handlers.github.issue_comment import PrCommand, Refused, Resolved, UsageError, parse_pr_command, resolve

FEATURE = {"NOTES.md": "a feature\n"}


def bring_in(world) -> str:
    """The bot learns of the service from a push to master (its deploy stays queued)."""
    sha = world.sandbox.push_commit(world.repo, "master", {"CHANGELOG.md": "v1\n"}, "Start the changelog")
    [delivery_id] = world.relay()
    world.wired.process_delivery(delivery_id)
    return sha


def command(world, number: int, body: str, user: str) -> tuple[int, str]:
    """Comment on PR `number` as `user`; the webhook goes through the endpoint and the worker."""
    comment_id, delivery = world.comment(number, body, user)
    response = world.post(delivery)
    assert response.status_code == 202, response.json
    world.wired.process_delivery(delivery.id)
    return comment_id, world.wired.store.delivery(delivery.id).outcome


def queued(world) -> list[tuple[str, tuple]]:
    return [(task.name, tuple(task.args)) for task in world.wired.queue.huey.pending()]


def test_a_deployer_locks_and_unlocks_from_a_pull_request(world):
    bring_in(world)
    number = world.open_pr("feature/search", FEATURE, "Add search")

    lock_id, outcome = command(world, number, "/lock incident 42", "octocat")

    assert world.status()["locked"] == {"by": "github:octocat", "reason": "incident 42"}
    assert world.reactions(lock_id) == ["+1"]
    [reply] = world.replies(number)
    assert reply.startswith("@octocat 🔒 locked") and "incident 42" in reply and "/unlock" in reply
    assert outcome.startswith("/lock incident 42 by github:octocat on #1: done")

    unlock_id, _ = command(world, number, "/unlock", "octocat")
    assert world.status()["locked"] is None
    assert world.reactions(unlock_id) == ["+1"]
    assert "🔓 unlocked" in world.replies(number)[-1]


def test_a_writer_who_is_no_deployer_is_told_why_and_nothing_changes(world):
    bring_in(world)
    number = world.open_pr("feature/search", FEATURE, "Add search")

    comment_id, outcome = command(world, number, "/lock production release freeze", "hubot")

    assert world.status()["locked"] is None
    assert world.reactions(comment_id) == ["-1"]
    [reply] = world.replies(number)
    assert reply.startswith("@hubot")
    assert f"not a deployer of {world.service} in production" in reply and "`github:octocat`" in reply
    assert "refused" in outcome


def test_a_reader_is_told_write_permission_is_needed(world):
    bring_in(world)
    number = world.open_pr("feature/search", FEATURE, "Add search")

    comment_id, outcome = command(world, number, "/rollback", "eve")

    assert world.reactions(comment_id) == ["-1"]
    [reply] = world.replies(number)
    assert "needs write permission" in reply and world.repo in reply
    assert [d["state"] for d in world.deploys().values()] == ["queued"]  # nothing rolled back
    assert outcome.endswith("which you do not have.")


def test_deploy_staging_queues_the_pull_requests_head_even_for_a_new_repo(world):
    number = world.open_pr("feature/search", FEATURE, "Add search", author="hubot")
    head = world.head("feature/search")

    comment_id, outcome = command(world, number, "/deploy staging", "hubot")

    [deploy] = world.wired.pipeline.deploys(world.service)
    assert (deploy["environment"], deploy["sha"], deploy["state"]) == ("staging", head, "queued")
    assert deploy["pull_numbers"] == [number] and deploy["requested_by"] == "github:hubot"
    assert ("drive", (world.service, "staging")) in queued(world)
    assert world.reactions(comment_id) == ["+1"]
    progress, reply = world.replies(number)  # the deploy's own comment first, then the answer
    assert "Queued for staging" in progress
    assert reply.startswith(f"@hubot queued `{head[:7]}` (`feature/search`) for staging")
    assert "done" in outcome


def test_deploy_to_production_before_the_merge_is_refused(world):
    bring_in(world)
    number = world.open_pr("feature/search", FEATURE, "Add search")
    head = world.head("feature/search")

    comment_id, _ = command(world, number, "/deploy production", "octocat")
    _, unknown = command(world, number, "/deploy qa", "octocat")

    assert head not in world.deploys()
    assert world.reactions(comment_id) == ["-1"]
    replies = world.replies(number)
    assert "production takes only `master`" in replies[0] and f"merge #{number}" in replies[0]
    assert "has no environment `qa` (known: `production`, `staging`)" in replies[1]
    assert "refused" in unknown


def test_the_bots_own_comments_and_plain_comments_are_ignored(world):
    bring_in(world)
    number = world.open_pr("feature/search", FEATURE, "Add search")
    command(world, number, "/lock incident 42", "octocat")
    [bot_reply] = [d for d in world.sandbox.deliveries
                   if d.event == "issue_comment" and d.payload["sender"]["login"] == "mainline[bot]"]

    world.post(bot_reply)
    world.wired.process_delivery(bot_reply.id)
    chat_id, chat = command(world, number, "Looks good to me.\n/unlock", "octocat")

    assert world.wired.store.delivery(bot_reply.id).outcome == "ignored: comment by mainline[bot]"
    assert chat == "ignored: not a command"
    assert world.reactions(chat_id) == []
    assert len(world.replies(number)) == 1
    assert world.status()["locked"] is not None


@pytest.mark.parametrize("body, expected", [
    ("/deploy staging", PrCommand("deploy", ("staging",))),
    ("\n  /LOCK production db migration  \nmore words", PrCommand("lock", ("production", "db", "migration"))),
    ("/unlock", PrCommand("unlock")),
    ("/rollback\r\nit 500s", PrCommand("rollback")),
    ("/deployment notes", None),
    ("please /deploy staging", None),
    ("/cc @octocat", None),
    ("", None),
])
def test_only_a_command_on_the_first_line_is_a_command(body, expected):
    assert parse_pr_command(body) == expected


CONFIG = parse_config("service: web\nenvironments:\n  production: {}\n  staging: {branches: ['*']}\n")


@pytest.mark.parametrize("text, expected", [
    ("/lock incident 42", Resolved("production", "incident 42")),
    ("/lock staging flaky db", Resolved("staging", "flaky db")),
    ("/rollback", Resolved("production")),
    ("/unlock staging", Resolved("staging")),
    ("/deploy staging", Resolved("staging")),
])
def test_commands_resolve_to_an_environment(text, expected):
    assert resolve(parse_pr_command(text), CONFIG) == expected


@pytest.mark.parametrize("text, error, says", [
    ("/deploy", UsageError, "Usage: `/deploy <environment>`"),
    ("/lock", UsageError, "Give a reason."),
    ("/lock staging", UsageError, "Give a reason."),
    ("/rollback production now", UsageError, "Usage: `/rollback [environment]`"),
    ("/deploy qa", Refused, "web has no environment `qa`"),
])
def test_commands_typed_wrong_say_how(text, error, says):
    with pytest.raises(error) as caught:
        resolve(parse_pr_command(text), CONFIG)
    assert says in str(caught.value)
