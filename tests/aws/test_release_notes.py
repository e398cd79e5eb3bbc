"""Release notes: their content, and the email SES sends (read back from moto's record)."""

from __future__ import annotations

import pytest
from aws_world import NEW_SHA, OLD_SHA

from bot.infra.aws.ses import SesMailer, SesRejectedError
from bot.notify.release_notes import ReleaseNotes

PULLS = [
    (41, "Add /health endpoint", "octocat", "https://github.com/acme/webapp/pull/41"),
    (42, "Fix <script> escaping in titles & names", "hubot", "https://github.com/acme/webapp/pull/42"),
]
SENDER = "mainline@example.com"


def notes(pulls=PULLS) -> ReleaseNotes:
    return ReleaseNotes.build("web", "production", OLD_SHA, NEW_SHA, pulls)


def test_notes_list_each_pull_request_with_title_author_and_link():
    n = notes()

    assert n.subject == "[web] production is live at bbbbbbb (2 pull requests)"
    assert "- #41 Add /health endpoint (@octocat) https://github.com/acme/webapp/pull/41" in n.text
    assert "Changes aaaaaaa..bbbbbbb:" in n.text
    assert '<a href="https://github.com/acme/webapp/pull/42">#42</a>' in n.html
    assert "Fix &lt;script&gt; escaping in titles &amp; names by @hubot" in n.html


def test_notes_as_json_carry_the_range_and_the_pulls():
    data = notes().as_json()

    assert data["previous_sha"] == OLD_SHA and data["sha"] == NEW_SHA
    assert data["pulls"][0] == {"number": 41, "title": "Add /health endpoint", "author": "octocat",
                                "url": "https://github.com/acme/webapp/pull/41"}


def test_notes_without_pull_requests_say_so():
    n = ReleaseNotes.build("web", "production", None, NEW_SHA, [])

    assert n.subject.endswith("(0 pull requests)")
    assert "No pull requests in bbbbbbb." in n.text


def test_slack_blocks_link_each_pull_and_escape_titles():
    blocks = notes().slack_blocks()

    assert [b["type"] for b in blocks] == ["section", "section"]
    assert blocks[0]["text"]["text"] == "*web* `bbbbbbb` is live in *production*"
    assert "• <https://github.com/acme/webapp/pull/42|#42> Fix &lt;script&gt; escaping in titles &amp; names (@hubot)" \
        in blocks[1]["text"]["text"]


def test_release_email_is_sent_through_ses(aws, moto_data):
    aws.client("ses").verify_email_identity(EmailAddress=SENDER)
    mailer = SesMailer(aws, SENDER)

    message_id = mailer.send(notes(), ["releases@example.com", "ops@example.com"])

    sent = [m for m in moto_data()["ses"]["Message"] if m["id"] == message_id]
    assert len(sent) == 1
    mail = sent[0]
    assert mail["source"] == SENDER
    assert mail["destinations"]["ToAddresses"] == ["releases@example.com", "ops@example.com"]
    assert mail["subject"] == "[web] production is live at bbbbbbb (2 pull requests)"
    # moto keeps one body of the two sent (the HTML one).
    assert "Add /health endpoint" in mail["body"] and "https://github.com/acme/webapp/pull/41" in mail["body"]


def test_nobody_to_tell_sends_nothing(aws, moto_data):
    assert SesMailer(aws, SENDER).send(notes(), []) is None
    assert moto_data().get("ses", {}).get("Message", []) == []


def test_an_unverified_sender_is_rejected_by_name(aws):
    with pytest.raises(SesRejectedError, match="MessageRejected"):
        SesMailer(aws, "nobody@example.com").send(notes(), ["releases@example.com"])
