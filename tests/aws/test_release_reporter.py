"""Release notes as people get them: pull requests merged on the local GitHub stand-in (real
merge commits, cloned over smart HTTP), mailed through SES on moto (read back from moto's record
of sent mail), posted to the Slack stand-in, and served by GET /api/releases."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from bot.infra.aws.ses import SesMailer
from bot.infra.db.store import Store
from bot.infra.git import GitClient
from bot.notify.release_reporter import ReleaseReporter, ReleaseSources, notes_between, notes_for
from bot.notify.reporting import github_host
from bot.notify.slack_reporter import slack_reporter
from bot.ports import DeployNotice
from bot.settings import load_settings
from sandbox.github import GitHubSandbox
from sandbox.slack import SlackStandIn
from tests.conftest import authed

SENDER = "mainline@example.com"
TOKEN = "ghp_sandbox"
OWNER = "acme"
DEPLOY_YML = """\
service: {service}
environments: {{production: {{target: docker, auto_deploy: true}}}}
notify: {{slack_channel: "#releases", email: [releases@example.com, ops@example.com]}}
"""


class Shop:
    """`acme/<service>` on the GitHub stand-in, with the bot's store and git client beside it."""

    def __init__(self, root: Path):
        self.sandbox = GitHubSandbox(root / "github", webhook_url=None, webhook_secret="s", validate=True).start()
        self.service = f"rel{uuid.uuid4().hex[:8]}"
        self.repo = f"{OWNER}/{self.service}"
        self.sandbox.create_repo(OWNER, self.service, {".github/deploy.yml": DEPLOY_YML.format(service=self.service)},
                                 collaborators={"octocat": "admin", "hubot": "write"})
        self.settings = load_settings(database_url=f"sqlite:///{root}/mainline.db",
                                      queue_url=f"sqlite:///{root}/queue.db", state_dir=root / "state",
                                      github_api_url=self.sandbox.url, github_token=TOKEN, github_write_interval=0,
                                      email_sender=SENDER)
        self.store = Store(self.settings.database_url)
        self.store.migrate()
        self.git = GitClient(root / "git", token=TOKEN)
        self.clone_url = f"{self.sandbox.url}/{self.repo}.git"
        self.row = self.store.upsert_service(self.service, self.repo, self.clone_url, "master")
        self.first = self.sandbox.head(self.repo, "master")

    def merge(self, branch: str, title: str, author: str) -> tuple[int, str]:
        self.sandbox.create_branch(self.repo, branch, self.sandbox.head(self.repo, "master"))
        self.sandbox.push_commit(self.repo, branch, {f"{branch}.txt": title}, title, author_login=author)
        number = self.sandbox.open_pull(self.repo, branch, "master", title, user=author)
        return number, self.sandbox.merge_pull(self.repo, number)

    def live(self, sha: str, previous_sha: str | None) -> DeployNotice:
        return DeployNotice(7, self.service, "production", self.repo, sha, "live", f"{sha[:12]} is live",
                            data={"previous_sha": previous_sha, "image": f"127.0.0.1:5000/{self.service}:{sha}"})

    def sources(self, with_github: bool = True) -> ReleaseSources:
        return ReleaseSources(self.store, self.git, github_host(self.settings) if with_github else None)


@pytest.fixture
def shop():
    root = Path(tempfile.mkdtemp(prefix="mlrel-"))
    made = Shop(root)
    try:
        yield made
    finally:
        made.sandbox.flush_webhooks()
        made.sandbox.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert made.sandbox.violations == [], "the stand-in saw GitHub's contract broken"


def sent_mail(moto_data, service: str) -> list[dict]:
    return [m for m in moto_data().get("ses", {}).get("Message", []) if f"[{service}]" in m["subject"]]


def test_release_email_names_each_pull_request_since_the_last_release(aws, shop, moto_data):
    aws.client("ses").verify_email_identity(EmailAddress=SENDER)
    before, previous = shop.merge("health", "Add /health endpoint", "octocat")
    n2, _ = shop.merge("escape", "Escape <script> in titles & names", "hubot")
    n3, tip = shop.merge("cache", "Cache the version page", "octocat")
    reporter = ReleaseReporter(shop.sources(), mailer=SesMailer(aws, SENDER))

    reporter.notify(shop.live(tip, previous))

    [mail] = sent_mail(moto_data, shop.service)
    assert mail["source"] == SENDER
    assert mail["destinations"]["ToAddresses"] == ["releases@example.com", "ops@example.com"]
    assert mail["subject"] == f"[{shop.service}] production is live at {tip[:7]} (2 pull requests)"
    html = mail["body"]
    assert (f'<a href="{shop.sandbox.url}/{shop.repo}/pull/{n2}">#{n2}</a> '
            "Escape &lt;script&gt; in titles &amp; names by @hubot") in html
    assert f'<a href="{shop.sandbox.url}/{shop.repo}/pull/{n3}">#{n3}</a> Cache the version page by @octocat' in html
    assert "Add /health endpoint" not in html, f"#{before} went out with the release before"


def test_without_github_the_merge_commits_name_the_pull_requests(shop):
    _, previous = shop.merge("health", "Add /health endpoint", "octocat")
    n2, tip = shop.merge("escape", "Escape titles", "hubot")

    notes = notes_between(shop.sources(with_github=False), shop.row, "production", previous, tip)

    # GitHub's merge message names the head branch's owner, here the repository's.
    assert [(p.number, p.title, p.author, p.url) for p in notes.pulls] == [
        (n2, "Escape titles", OWNER, f"https://github.com/{shop.repo}/pull/{n2}")]


def test_a_bad_release_and_its_revert_cancel_out_in_the_notes(shop):
    _, previous = shop.merge("health", "Add /health endpoint", "octocat")
    _, bad = shop.merge("orders", "Query orders without an index", "hubot")
    revert = shop.sandbox.push_commit(shop.repo, "master", {"orders.txt": ""},
                                      f'Revert "Query orders without an index"\n\nThis reverts commit {bad}.',
                                      author_login="octocat")
    n4, tip = shop.merge("cache", "Cache the version page", "octocat")
    assert revert != tip

    notes = notes_between(shop.sources(), shop.row, "production", previous, tip)

    assert [p.number for p in notes.pulls] == [n4]


def test_an_unverified_sender_is_a_warning_and_nothing_is_sent(aws, shop, moto_data, caplog):
    _, previous = shop.merge("health", "Add /health endpoint", "octocat")
    _, tip = shop.merge("cache", "Cache the version page", "octocat")
    reporter = ReleaseReporter(shop.sources(), mailer=SesMailer(aws, "nobody@example.com"))

    with caplog.at_level(logging.WARNING, logger="mainline.release_notes"):
        reporter.notify(shop.live(tip, previous))

    assert sent_mail(moto_data, shop.service) == []
    [warning] = [r for r in caplog.records if r.name == "mainline.release_notes"]
    assert warning.levelno == logging.WARNING and "MessageRejected" in warning.getMessage()


def test_release_notes_are_posted_to_the_services_slack_channel(shop):
    _, previous = shop.merge("health", "Add /health endpoint", "octocat")
    n2, tip = shop.merge("cache", "Cache the version page", "hubot")
    with SlackStandIn(token="xoxb-release") as slack:
        chat = slack_reporter("xoxb-release", slack.url, "#deploys")
        try:
            ReleaseReporter(shop.sources(), slack=chat, slack_channel="#deploys").notify(shop.live(tip, previous))
        finally:
            chat.close()

        [message] = slack.top_level("#releases")
        assert slack.violations == []
    assert message.text == f"[{shop.service}] production is live at {tip[:7]} (1 pull request)"
    assert f"<{shop.sandbox.url}/{shop.repo}/pull/{n2}|#{n2}> Cache the version page (@hubot)" \
        in message.blocks[1]["text"]["text"]


def test_only_a_release_going_live_is_announced(aws, shop, moto_data):
    aws.client("ses").verify_email_identity(EmailAddress=SENDER)
    _, previous = shop.merge("health", "Add /health endpoint", "octocat")
    _, tip = shop.merge("cache", "Cache the version page", "octocat")
    reporter = ReleaseReporter(shop.sources(), mailer=SesMailer(aws, SENDER))
    live = shop.live(tip, previous)

    for state, kind in (("verifying", "transition"), ("rolled_back", "transition"), ("live", "gate")):
        reporter.notify(DeployNotice(**{**live.__dict__, "state": state, "kind": kind}))

    assert sent_mail(moto_data, shop.service) == []


def test_api_releases_serves_each_release_with_its_notes_newest_first(shop):
    from bot.app import create_app
    from bot.wiring import wire

    _, v1 = shop.merge("health", "Add /health endpoint", "octocat")
    n2, _ = shop.merge("escape", "Escape titles", "hubot")
    n3, v3 = shop.merge("cache", "Cache the version page", "octocat")
    wired = wire(shop.settings, reporters=[])
    shop.store.environment(shop.row.id, "production")
    shop.store.set_live(shop.row.id, "production", v1, f"127.0.0.1:5000/{shop.service}:{v1}", None, None)
    shop.store.set_live(shop.row.id, "production", v3, f"127.0.0.1:5000/{shop.service}:{v3}", None, None)
    # Going live asks GitHub about the release's PRs once, and keeps the answers for the views.
    at_release = notes_for(wired.pipeline, shop.service, "production", v3).as_json()
    client = authed(create_app(shop.settings, wired).test_client(), wired)

    resp = client.get(f"/api/releases?service={shop.service}&environment=production")

    assert resp.status_code == 200, resp.get_json()
    newest, first = resp.get_json()
    assert (newest["sha"], newest["status"], first["sha"], first["status"]) == (v3, "live", v1, "retired")
    assert newest["image"] == f"127.0.0.1:5000/{shop.service}:{v3}" and newest["since"].endswith("Z")
    assert newest["notes"]["previous_sha"] == v1
    assert newest["notes"]["pulls"] == [
        {"number": n2, "title": "Escape titles", "author": "hubot", "url": f"{shop.sandbox.url}/{shop.repo}/pull/{n2}"},
        {"number": n3, "title": "Cache the version page", "author": "octocat",
         "url": f"{shop.sandbox.url}/{shop.repo}/pull/{n3}"},
    ]
    assert first["notes"]["previous_sha"] is None and [p["number"] for p in first["notes"]["pulls"]] == [1]
    assert at_release == newest["notes"]
    assert len(client.get(f"/api/releases?service={shop.service}&limit=1").get_json()) == 1


@pytest.mark.parametrize("query, status, error", [
    ("", 400, "`service` query parameter is required"),
    ("?service=nope", 404, "unknown service 'nope'"),
    ("?service={service}&limit=many", 400, "`limit` must be a whole number"),
    ("?service={service}&environment=staging", 404, "no releases in 'staging'"),
])
def test_api_releases_refuses_a_bad_query_with_a_json_reason(shop, query, status, error):
    from bot.app import create_app
    from bot.wiring import wire

    shop.store.environment(shop.row.id, "production")
    wired = wire(shop.settings, reporters=[])
    client = authed(create_app(shop.settings, wired).test_client(), wired)

    resp = client.get("/api/releases" + query.format(service=shop.service))

    assert resp.status_code == status and error in resp.get_json()["error"]
