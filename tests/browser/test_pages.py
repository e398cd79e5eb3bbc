"""The stack page, the deploy page and their buttons, in Debian's headless Chromium against the
real app on a real WSGI server (state from tests/browser/story.py). Screenshots of each page are
kept under tests/browser/artifacts/ (ignored by git) for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import deliver_merge, sign_in
from tests.browser.story import HOSTILE_OUTPUT, HOSTILE_TITLE, play
from tests.conftest import LocalRepo
from tests.handlers.test_github_webhook import EXAMPLE_REPO

ARTIFACTS = Path(__file__).parent / "artifacts"
LOCK_WAIT = "lock: locked by github:octocat: incident 42; deploys resume when it is unlocked"


@pytest.fixture
def story(served, wired, local_repo):
    return play(served, wired, local_repo)


def screenshot(page, name: str) -> Path:
    """Taken before the assertions, so a failing run leaves a picture of what it saw."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def cells(table, row: int):
    return table.get_by_role("row").nth(row).get_by_role("cell")


def test_the_stack_page_tells_what_is_live_what_waits_and_why(served, story, page, github):
    pwned = []
    page.on("dialog", lambda d: (pwned.append(d.message), d.dismiss()))
    sign_in(page, served)
    page.get_by_role("link", name="web").first.click()
    expect(page).to_have_title("web · Mainline")
    shot = screenshot(page, "stack")

    live = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Live", exact=True))
    expect(live).to_contain_text(story["v1"][:12])
    expect(live).to_contain_text("since")
    expect(live.get_by_role("link", name=story["v1"][:12])).to_have_attribute(
        "href", f"{github.url}/{EXAMPLE_REPO}/commit/{story['v1']}")

    waiting = page.get_by_role("table", name="Commits of web not live in production")
    # Newest first: #8 (its own deploy, held by the lock), the revert, and #7 (carried by #8's deploy).
    expect(waiting.get_by_role("row")).to_have_count(4)
    expect(cells(waiting, 1).nth(1)).to_have_text("#8 Checkout, again")
    expect(cells(waiting, 1).nth(2)).to_have_text("octocat")
    expect(cells(waiting, 1).nth(3)).to_have_text(f"deploy #{story['waiting']} queued: {LOCK_WAIT}")
    expect(cells(waiting, 2).nth(1)).to_have_text('Revert "Merge pull request #7 from hubot/checkout"')
    expect(cells(waiting, 2).nth(2)).to_have_text("Octo Cat")  # a direct push: its git author
    expect(cells(waiting, 3).nth(1)).to_have_text(f"#7 {HOSTILE_TITLE}")  # shown as text, never as HTML
    expect(cells(waiting, 3).nth(3)).to_contain_text("(with a newer commit)")
    expect(waiting.get_by_role("link", name="#8")).to_have_attribute("href", f"{github.url}/{EXAMPLE_REPO}/pull/8")

    lock = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Lock", exact=True))
    expect(lock).to_contain_text("locked by github:octocat: incident 42")

    recent = page.get_by_role("table", name="Recent deploys of web to production")
    expect(cells(recent, 2)).to_have_text([f"#{story['bad']}", story["v2"][:12], "reverted", re.compile(r"\d"),
                                           re.compile(r"\d"), "1m 23s", re.compile("github")])
    expect(cells(recent, 1).nth(2)).to_have_text("queued")
    expect(page.get_by_role("heading", name="The four keys").first).to_be_visible()
    assert pwned == [] and page.evaluate("window.pwned") is None
    assert shot.stat().st_size > 10_000


def test_the_deploy_page_shows_the_timeline_and_its_evidence(served, story, page, github):
    sign_in(page, served)
    page.goto(f"{served}/services/web")
    page.get_by_role("table", name="Recent deploys of web to production").get_by_role(
        "link", name=f"#{story['bad']}").click()
    expect(page).to_have_title(f"Deploy #{story['bad']} · Mainline")
    page.get_by_text("Last probe output").click()
    shot = screenshot(page, "deploy")

    facts = page.get_by_role("table", name=f"Deploy #{story['bad']}", exact=True)
    expect(facts.get_by_role("row").first).to_contain_text("reverted")
    expect(facts).to_contain_text("verification failed: 50% of responses were 5xx")
    expect(facts).to_contain_text("1m 23s")
    expect(facts.get_by_role("link", name="#7")).to_have_attribute("href", f"{github.url}/{EXAMPLE_REPO}/pull/7")
    expect(facts.get_by_role("link", name=story["revert"][:12])).to_have_attribute(
        "href", f"{github.url}/{EXAMPLE_REPO}/commit/{story['revert']}")

    timeline = page.get_by_role("table", name=f"Timeline of deploy #{story['bad']}")
    kinds = [c.strip() for c in timeline.locator("tr td:nth-child(3)").all_inner_texts()]
    assert kinds[kinds.index("gating"):] == ["gating", "building", "rolling_out", "verifying", "rolling_back",
                                            "rolled_back", "reverting", "reverted"]
    evidence = timeline.get_by_role("row").filter(has_text="rolling_back").filter(has_text="verification failed")
    expect(evidence).to_contain_text("error rate")
    expect(evidence).to_contain_text("0.5")
    expect(evidence.locator("pre")).to_have_text(HOSTILE_OUTPUT)  # the probe's bytes, as text
    assert page.evaluate("window.pwned") is None
    assert shot.stat().st_size > 10_000


def test_a_deployer_unlocks_and_locks_with_the_buttons(served, story, page, wired):
    sign_in(page, served)
    page.goto(f"{served}/services/web")
    actions = page.get_by_role("group", name="Actions on production")
    actions.get_by_role("button", name="Unlock").click()
    expect(page.get_by_role("status")).to_have_text("Unlocked web in production.")
    lock = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Lock", exact=True))
    expect(lock).to_contain_text("none")
    assert wired.store.lock_for("web", "production") is None

    actions.get_by_label("Why lock").fill("release train <b>paused</b>")
    actions.get_by_role("button", name="Lock").click()
    expect(page.get_by_role("status")).to_have_text("Locked web in production: release train <b>paused</b>")
    expect(lock).to_contain_text("locked by github:octocat: release train <b>paused</b>")
    assert wired.store.lock_for("web", "production").by == "github:octocat"
    screenshot(page, "stack-after-lock")
    page.reload()  # the message shows once
    expect(page.get_by_role("status")).to_have_count(0)


def test_a_deployer_rolls_back_with_the_button(served, story, page, wired):
    wired.pipeline.unlock("web", "production", "github:octocat")
    sign_in(page, served)
    page.goto(f"{served}/services/web")
    page.get_by_role("group", name="Actions on production").get_by_role("button", name="Roll back").click()
    # The only earlier release is none: the pipeline's refusal is shown, nothing changes.
    expect(page.get_by_role("alert")).to_have_text("no earlier good release of web in production")
    assert wired.store.live_release(wired.store.service("web").id, "production").sha == story["v1"]


def test_someone_who_is_not_a_deployer_sees_no_buttons(served, story, page, wired, tmp_path):
    (tmp_path / "api-repo").mkdir()
    api_repo = LocalRepo(tmp_path / "api-repo", service="api", port=18081)  # deployers: nobody
    deliver_merge(served, wired, api_repo, api_repo.commit("Merge pull request #3 from octocat/api"), number=3,
                  full_name="octocat/api")
    sign_in(page, served)
    page.goto(f"{served}/services/api")
    expect(page.get_by_role("heading", name="api · production")).to_be_visible()
    expect(page.get_by_role("button")).to_have_count(0)
    page.goto(f"{served}/services/web")
    expect(page.get_by_role("group", name="Actions on production").get_by_role("button")).to_have_text(
        ["Deploy", "Roll back", "Unlock"])  # octocat deploys web


def test_unknown_pages_say_so(served, page):
    sign_in(page, served)
    for path, words in (("/deploys/999", "There is no deploy '999'."), ("/deploys/x", "There is no deploy 'x'."),
                        ("/services/nope", "Mainline deploys no service named 'nope'.")):
        answer = page.goto(served + path)
        assert answer.status == 404, path
        expect(page.get_by_role("alert")).to_have_text(words)
