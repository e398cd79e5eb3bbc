"""Every open pull request gets a `mainline/preview` check run saying what merging it now would
ship, on the GitHub stand-in (its OpenAPI and webhook-schema checks on): the opened webhook is the
stand-in's own, posted signed through the real Flask app and processed as the worker does."""

from __future__ import annotations

import copy
import json
import re
import uuid

from sqlalchemy import func, select

from bot import webhook
from bot.infra.db.models import ApprovalRow, DeployEventRow, DeployRow
from sandbox.github_shapes import person_for
from tests.conftest import DROP_EMAIL
from tests.e2e.github_world import SECRET


def process_inbox(w) -> None:
    """The worker's inbox pass only: deliveries, no deploy steps (nothing here is built)."""
    for delivery_id in w.wired.store.unprocessed_deliveries(older_than=0):
        w.wired.process_delivery(delivery_id)


def with_v1_live(w) -> str:
    """The service known to Mainline through a push to master, with that push recorded live."""
    v1 = w.sandbox.push_commit(w.repo, "master", {"CHANGELOG.md": "v1\n"}, "Start the changelog")
    w.relay()
    process_inbox(w)
    store = w.wired.store
    service = store.service(w.service)
    store.set_live(service.id, "production", v1, f"127.0.0.1:5000/{w.service}:{v1}", None, None)
    return v1


def preview_runs(w, sha: str) -> list:
    return [r for r in w.sandbox.repo(w.repo).check_runs.values() if r.name == "mainline/preview" and r.head_sha == sha]


def counts(store) -> dict:
    with store.session() as s:
        return {t.__name__: s.scalar(select(func.count()).select_from(t))
                for t in (DeployRow, DeployEventRow, ApprovalRow)}


def test_an_opened_pull_request_gets_a_preview_check_run(world):
    with_v1_live(world)
    world.wired.pipeline.lock(world.service, "production", "github:octocat", "release freeze for the launch")
    before = counts(world.wired.store)
    files = {"db/migrate/20260401000000_drop_email.rb": DROP_EMAIL,
             ".github/deploy.yml": world.config_text().replace("replicas: 1", "replicas: 2")}
    number = world.open_pr("hubot/drop-email", files, "Drop users.email", author="hubot")
    head = world.head("hubot/drop-email")
    world.relay()
    process_inbox(world)

    [run] = preview_runs(world, head)
    assert run.status == "completed" and run.conclusion == "neutral"
    assert f"Merging #{number} now would wait in production: lock" in run.output["title"]
    summary = run.output["summary"]
    assert ("db/migrate/20260401000000\\_drop\\_email.rb" in summary
            or "db/migrate/20260401000000_drop_email.rb" in summary)
    assert "**contract**" in summary and "users.email" in summary
    assert "release freeze for the launch" in summary
    assert "+    replicas: 2" in summary and "takes effect once on master" in summary
    assert f"#{number} Drop users.email by @\u200dhubot" in summary
    # Asking changed nothing: no deploy of the PR's head, no event, no approval asked.
    assert counts(world.wired.store) == before
    assert head not in world.deploys()


def test_a_new_push_to_the_pull_request_updates_its_preview_in_place(world):
    with_v1_live(world)
    world.open_pr("octocat/notes", {"NOTES.md": "one\n"}, "Add notes")
    world.relay()
    process_inbox(world)
    first = world.head("octocat/notes")
    delivery = [d for d in world.sandbox.deliveries if d.event == "pull_request"][-1]
    payload = copy.deepcopy(delivery.payload)
    second = world.sandbox.push_commit(world.repo, "octocat/notes", {"NOTES.md": "two\n"}, "More notes")
    payload.update(action="synchronize")
    payload["pull_request"]["head"]["sha"] = second
    post(world, "pull_request", payload)
    world.relay()
    process_inbox(world)
    assert len(preview_runs(world, first)) == 1
    [run] = preview_runs(world, second)
    assert "now would ship 2 commit(s) to production" in run.output["title"]


def test_a_fork_pull_request_gets_a_preview_saying_it_is_not_deployed(world):
    with_v1_live(world)
    world.open_pr("octocat/docs", {"DOCS.md": "docs\n"}, "Docs")
    world.relay()
    process_inbox(world)
    opened = [d for d in world.sandbox.deliveries if d.event == "pull_request"][-1].payload
    git = world.sandbox.repo(world.repo).git
    # A fork's commit: GitHub knows it in the repository's network, but no branch of ours holds it.
    fork_sha = git.write_commit([world.head()], {"FORK.md": "from a fork\n"}, "Fork work", person_for("eve"))
    payload = copy.deepcopy(opened)
    payload["number"] = payload["pull_request"]["number"] = 99
    payload["pull_request"]["head"].update(sha=fork_sha, ref="master")
    payload["pull_request"]["head"]["repo"]["full_name"] = "eve/webapp"
    payload["pull_request"]["user"]["login"] = "eve"
    assert post(world, "pull_request", payload).status_code == 202
    process_inbox(world)
    [run] = preview_runs(world, fork_sha)
    assert run.conclusion == "neutral"
    assert "comes from a fork" in run.output["summary"] and "never builds or deploys" in run.output["summary"]
    assert fork_sha not in world.deploys()


def test_a_repository_mainline_does_not_deploy_gets_no_preview(world):
    world.open_pr("octocat/early", {"EARLY.md": "x\n"}, "Early")
    world.relay(events=("pull_request",))
    process_inbox(world)
    assert preview_runs(world, world.head("octocat/early")) == []
    rows = world.wired.store.unprocessed_deliveries(older_than=0)
    assert rows == []


def post(w, event: str, payload: dict):
    body = json.dumps(payload).encode()
    return w.client.post("/github/webhook", data=body, headers={
        "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": webhook.sign(SECRET, body), "Content-Type": "application/json"})


def test_a_hostile_title_and_config_cannot_break_out_of_the_preview(world):
    with_v1_live(world)
    title = "Fix @acme/everyone [click](https://evil.example) <!-- mainline --> <img src=x>"
    hostile = world.config_text() + "# ```\n# </details> @acme/security\n"
    world.open_pr("eve-ish/x", {".github/deploy.yml": hostile}, title, author="hubot")
    world.relay()
    process_inbox(world)
    [run] = preview_runs(world, world.head("eve-ish/x"))
    summary = run.output["summary"]
    assert "@acme/everyone" not in summary and "@acme/security" not in summary
    assert "<!--" not in summary
    assert not re.search(r"(?<!\\)<img", summary) and not re.search(r"(?<!\\)\[click\]\(", summary)
    # The diff sits in a fence longer than any backtick run it holds.
    assert "````diff\n" in summary and "# ```" in summary


def test_octokits_opened_example_is_understood(client, wired):
    from tests.handlers.test_github_webhook import example
    from tests.handlers.test_github_webhook import post as post_signed

    payload = example("pull_request.opened")
    assert post_signed(client, "pull_request", payload, delivery="d-opened").status_code == 202
    wired.process_delivery("d-opened")
    assert wired.store.delivery("d-opened").outcome == (
        f"no preview for #{payload['number']}: Codertocat/Hello-World is not deployed by Mainline")
