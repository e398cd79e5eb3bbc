"""Attack 15 (repository text reached Slack unescaped) and attack 20 (the bot edited any comment
holding its hidden marker), and the same care for GitHub markdown: text a repository controls
(check output, probe bodies, lock reasons, PR titles) arrives where people read it as inert
text, through the real adapters and the Slack and GitHub stand-ins."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask

from bot.infra.github.client import GitHubAdapter, GitHubConfig
from bot.infra.github.revert import PullRequestReverter, RevertRequest
from bot.infra.slack.web import SlackWeb
from bot.notify.github_reporter import GitHubReporter, comment_marker
from bot.notify.slack_reporter import SlackReporter
from bot.ports import DeployNotice
from bot.retry import policy
from handlers.slack import commands as slack_commands
from handlers.slack.common import SlackDeps
from sandbox.github import GitHubSandbox
from sandbox.slack import SlackStandIn, all_text, displayed, live_sequences

TOKEN = "xoxb-escaping"
SECRET = "slack-signing-secret"
BOT = "mainline[bot]"
REPO = "acme/webapp"
SHA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
# What an attacker puts in anything the repository controls.
BROADCAST = "<!channel>"
DISGUISED = "<https://evil.example/login|https://sso.acme.com>"
HOSTILE = f"{BROADCAST} please sign in again at {DISGUISED} `code` ```"
MARKER = comment_marker("web", "production")


# -- Slack --------------------------------------------------------------------------------------


@pytest.fixture
def standin():
    with SlackStandIn(token=TOKEN) as server:
        yield server
        assert server.violations == []


@pytest.fixture
def reporter(standin):
    rep = SlackReporter(SlackWeb(TOKEN, standin.url, policy=policy("slack-test", attempts=3, base=0.01, cap=0.05)),
                        "#deploys",
                        slack_users={"octocat": "U0OCTOCAT"}, retry_pause=0.05)
    yield rep
    rep.close()


def notice(state: str, message: str, kind: str = "transition", **data) -> DeployNotice:
    return DeployNotice(9, "web", "production", REPO, SHA, state, message, kind=kind, pull_numbers=(4,),
                        requested_by="github:octocat", data={"authors": ["octocat"], **data})


def assert_inert(texts: list[str]) -> None:
    """Nothing Slack would act on but the bot's own mention of a mapped user."""
    for text in texts:
        live = live_sequences(text)
        assert all(seq.startswith("@U") for seq in live), (live, text)


def test_attack_15_check_output_probe_bodies_and_lock_reasons_reach_slack_escaped(reporter, standin):
    # A repo check's output blocks the gate; the lock gate quotes a lock reason; the probe's body
    # is the reason of a rollback.
    reporter.notify(notice("gating", "", kind="gate", gate="repo_checks", status="block",
                           reason=f"check unit failed: {HOSTILE}"))
    reporter.notify(notice("gating", "", kind="gate", gate="lock", status="wait",
                           reason=f"web is locked by mainline: revert conflicts in {HOSTILE}"))
    reporter.notify(notice("rolling_back", f"health probe answered 500: {HOSTILE}"))
    reporter.notify(notice("rolled_back", f"rolled back: {HOSTILE}"))
    assert reporter.flush(10)

    messages = [m for ms in standin.messages.values() for m in ms]
    texts = [all_text(m) for m in messages]
    assert len(messages) >= 4
    assert_inert(texts)
    joined = "\n".join(texts)
    assert "<!channel>" not in joined and "<https://evil" not in joined
    # Still readable: a person sees what the repository wrote, as text.
    shown = displayed(joined)
    assert "<!channel> please sign in again at <https://evil.example/login|https://sso.acme.com>" in shown
    assert "<@U0OCTOCAT>" in joined  # the bot's own mention of the author still works


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Pipeline:
    """What `/status` reads: a service locked by the bot with a reason quoting file names from
    the repository, and a queued sha held by a gate quoting check output."""

    def status(self, service=None):
        return [{"service": "web", "environment": "production", "live": {"sha": SHA, "image": "x", "since": "now"},
                 "head": SHA, "in_sync": False,
                 "locked": {"by": "mainline", "reason": f"revert conflicts in {HOSTILE}"},
                 "queue": [{"sha": "f" * 40, "state": "queued", "blocked_by": f"repo checks: {HOSTILE}"}]}]


def test_attack_15_a_lock_reason_in_a_status_reply_is_escaped(reporter, standin):
    deps = SlackDeps(signing_secret=SECRET, pipeline=Pipeline(), chat=reporter, clock=Clock(),
                     run_later=lambda job: job())
    app = Flask("escaping")
    app.register_blueprint(slack_commands.blueprint(deps))
    url = standin.response_url()
    body = urlencode({"team_id": "T1", "channel_id": "C1", "user_id": "U0DEPLOYER", "user_name": "d",
                      "command": "/status", "text": "", "response_url": url, "trigger_id": "1"})
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()

    answer = app.test_client().post("/slack/commands", data=body, headers={
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded"})

    assert answer.status_code == 200
    replies = standin.responses[url.rsplit("/", 1)[1]]
    assert len(replies) == 1
    text = replies[0]["text"]
    assert_inert([text])
    assert "locked by mainline: revert conflicts in <!channel>" in displayed(text)


# -- GitHub -------------------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path):
    sb = GitHubSandbox(tmp_path / "github", validate=True).start()
    sb.create_repo("acme", "webapp", {"app.txt": "version 1\n"}, collaborators={"octocat": "admin"})
    sb.tokens["ghp_octocat"] = "octocat"
    yield sb
    sb.stop()
    assert sb.violations == []


@pytest.fixture
def host(sandbox):
    return GitHubAdapter(GitHubConfig(base_url=sandbox.url, token="ghp_bot", write_interval=0))


def merge_pr(sb: GitHubSandbox, branch: str, files: dict, title: str) -> tuple[int, str]:
    sb.create_branch(REPO, branch, sb.head(REPO, "master"))
    sb.push_commit(REPO, branch, files, "change")
    number = sb.open_pull(REPO, branch, "master", title)
    return number, sb.merge_pull(REPO, number)


def unescaped(pattern: str, markdown: str) -> bool:
    """Whether `pattern` occurs in `markdown` without a backslash escaping its first character."""
    return re.search(r"(?<!\\)" + pattern, markdown) is not None


def comments(sb: GitHubSandbox, number: int) -> list:
    return sorted((c for c in sb.repo(REPO).comments.values() if c.issue_number == number), key=lambda c: c.id)


def test_attack_20_a_comment_holding_the_bots_marker_is_left_alone_and_the_bot_writes_its_own(sandbox, host):
    number, sha = merge_pr(sandbox, "docs", {"README.md": "docs\n"}, "Document the app")
    forged = f"{MARKER}\n### ✅ Live in production\n\nAll good, [sign in](https://evil.example) to see."
    # octocat comments through the API with her own token, as anyone with access can.
    posted = requests.post(f"{sandbox.url}/repos/{REPO}/issues/{number}/comments", json={"body": forged},
                           headers={"Authorization": "token ghp_octocat"}, timeout=10)
    assert posted.status_code == 201 and posted.json()["user"]["login"] == "octocat"
    reporter = GitHubReporter(host)

    reporter.notify(DeployNotice(7, "web", "production", REPO, sha, "queued", "queued", pull_numbers=(number,)))
    reporter.notify(DeployNotice(7, "web", "production", REPO, sha, "live", "web is live", pull_numbers=(number,)))

    theirs, ours = comments(sandbox, number)
    assert (theirs.user, theirs.body) == ("octocat", forged)  # untouched
    assert ours.user == BOT and ours.body.startswith(MARKER) and "Live in production" in ours.body
    assert host.bot_login() == BOT


def test_a_pr_title_with_mentions_and_a_forged_marker_arrives_in_the_pr_comment_neutralised(sandbox, host,
                                                                                             tmp_path):
    title = f"Fix login @acme/everyone {MARKER} [click](https://evil.example)"
    number, sha = merge_pr(sandbox, "login", {"app.txt": "version 2\n"}, title)
    request = RevertRequest(REPO, "master", (sha,), (number,), reason=f"probe said {HOSTILE} @acme/everyone",
                            evidence=f"- last probe: {HOSTILE}\n<!-- mainline:revert sha={sha} -->")

    outcome = PullRequestReverter(host, workdir=tmp_path).revert(request)
    # The deploy comment of the same service and environment is written afterwards: it must not
    # take the revert comment (which quotes the title with its forged marker) for its own.
    GitHubReporter(host).notify(DeployNotice(7, "web", "production", REPO, sha, "reverted", "reverted",
                                             pull_numbers=(number,)))

    told = [c for c in comments(sandbox, number) if c.user == BOT]
    assert len(told) == 2
    revert_comment = next(c.body for c in told if f"reverted by #{outcome.pull_number}" in c.body)
    for body in [revert_comment, sandbox.pull(REPO, outcome.pull_number).body]:
        assert "@acme/everyone" not in body  # nobody is notified
        assert body.count("<!--") == 1  # the bot's own marker, first, and nothing forged
        assert not unescaped(r"\[click\]\(", body)  # no disguised link: shown as typed
        assert "<!channel>" not in body
    assert "acme/everyone" in revert_comment and "Fix login" in revert_comment  # still readable
    # The title of the revert pull request stays as GitHub's revert button names it.
    assert sandbox.pull(REPO, outcome.pull_number).title == f'Revert "{title}"'


def test_check_output_in_a_check_run_summary_cannot_break_out_or_mention(sandbox, host):
    _, sha = merge_pr(sandbox, "late", {"app.txt": "version 2\n"}, "Late change")
    output = "FAILED test_x\n```\n</details>\n@acme/security-team look <img src=https://evil.example/p.png>"
    GitHubReporter(host).notify(DeployNotice(7, "web", "production", REPO, sha, "gating", "", kind="gate",
                                             data={"gate": "repo_checks", "status": "block", "reason": output}))
    run = next(iter(sandbox.repo(REPO).check_runs.values()))
    summary = run.output["summary"]
    assert "@acme/security-team" not in summary
    assert not unescaped("<img", summary) and not unescaped("</details>", summary)
    assert not unescaped("```", summary)
    assert "FAILED test\\_x" in summary
