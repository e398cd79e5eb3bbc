"""The dashboard as a person sees it: Debian's headless Chromium opens `/` on the real app, served
by a real WSGI server, after real state went in through the webhook and the pipeline (no Docker:
nothing here builds; a release is made live by writing it where a finished rollout would)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from bot.domain import utcnow
from tests.browser.conftest import deliver_merge, sign_in
from tests.conftest import LocalRepo

LOCK_WAIT = "lock: locked by octocat: incident 42; deploys resume when it is unlocked"


def make_live(wired, service: str, sha: str) -> None:
    """What a finished rollout leaves behind: the release is live and its deploy says so."""
    row = wired.store.service(service)
    wired.store.set_live(row.id, "production", sha, f"127.0.0.1:5000/{service}:{sha}", None, None)
    deploy = next(d for d in wired.pipeline.deploys(service, limit=50) if d["sha"] == sha)
    now = utcnow()
    wired.store.update_deploy(deploy["id"], None, state="live", started_at=now, finished_at=now)
    wired.store.add_event(deploy["id"], service, "production", "live", f"{sha[:12]} is live in production")


@pytest.fixture
def fleet(served, wired, local_repo, tmp_path):
    """web: #6 live, #7 merged and held by a lock; api: #3 live and nothing newer (in sync)."""
    v1 = local_repo.commit("Merge pull request #6 from octocat/first")
    deliver_merge(served, wired, local_repo, v1, number=6)
    make_live(wired, "web", v1)
    # A change of files: "in sync" compares trees, so an empty commit on top would still be in sync.
    v2 = local_repo.commit("Merge pull request #7 from octocat/feature", {"app.txt": "v2\n"})
    deliver_merge(served, wired, local_repo, v2, number=7)
    wired.pipeline.lock("web", "production", "octocat", "incident 42")
    wired.pipeline.drive("web", "production")  # the gates run and say why v2 waits; nothing builds

    (tmp_path / "api-repo").mkdir()
    api_repo = LocalRepo(tmp_path / "api-repo", service="api", port=18081)
    api = api_repo.commit("Merge pull request #3 from octocat/api")
    deliver_merge(served, wired, api_repo, api, number=3, full_name="octocat/api")
    make_live(wired, "api", api)
    return {"v1": v1, "v2": v2, "api": api, "repo": local_repo}


def service_section(page, name: str):
    return page.get_by_role("region", name=name)


def row(section, header: str):
    """The value cell of a `Live` / `Branch head` / `Lock` / `Queue` row, found by its row header."""
    return section.get_by_role("row").filter(has=section.page.get_by_role("rowheader", name=header, exact=True))


def test_dashboard_shows_what_is_live_what_waits_and_why(served, fleet, page, tmp_path):
    sign_in(page, served)
    expect(page).to_have_title("Mainline")
    shot = tmp_path / "dashboard.png"  # taken first, so a failing run leaves a picture of what it saw
    page.screenshot(path=str(shot), full_page=True)

    web = service_section(page, "web · production")
    expect(web.get_by_role("heading", name="web · production")).to_be_visible()
    expect(row(web, "Live")).to_contain_text(fleet["v1"][:12])
    expect(row(web, "Branch head")).to_contain_text(fleet["v2"][:12])
    expect(row(web, "Branch head")).to_contain_text("not in sync")
    expect(row(web, "Lock")).to_have_text(re.compile(r"locked by octocat: incident 42"))
    expect(row(web, "Queue")).to_contain_text(fleet["v2"][:12])
    expect(row(web, "Queue")).to_contain_text(f"queued, waiting on {LOCK_WAIT}")
    recent = web.get_by_role("table", name="Recent deploys of web to production")
    expect(recent.get_by_role("row")).to_have_count(3)  # the header, v2 (queued) and v1 (live)
    when = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")  # to the second, no microseconds
    expect(recent.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(
        [fleet["v2"][:12], "queued", "", "", f"waiting on {LOCK_WAIT}"])
    expect(recent.get_by_role("row").nth(2).get_by_role("cell")).to_have_text(
        [fleet["v1"][:12], "live", when, when, f"{fleet['v1'][:12]} is live in production"])

    api = service_section(page, "api · production")
    expect(row(api, "Branch head")).to_contain_text("in sync")
    expect(row(api, "Branch head")).not_to_contain_text("not in sync")
    expect(row(api, "Lock")).to_have_text(re.compile("none"))
    expect(row(api, "Queue")).to_have_text(re.compile("empty"))
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one


def test_an_open_dashboard_shows_a_new_merge_without_a_reload(served, fleet, wired, page):
    sign_in(page, served)
    web = service_section(page, "web · production")
    expect(row(web, "Queue")).to_contain_text(fleet["v2"][:12])
    v3 = fleet["repo"].commit("Merge pull request #8 from octocat/more", {"app.txt": "v3\n"})
    deliver_merge(served, wired, fleet["repo"], v3, number=8)
    # The page refreshes itself every 5 s; nobody touches it here.
    expect(row(service_section(page, "web · production"), "Queue")).to_contain_text(v3[:12], timeout=8_000)


def test_api_services_fetched_by_the_browser_is_json(served, fleet, page):
    sign_in(page, served)  # the session cookie goes with the page's own fetch
    answer = page.evaluate("""async () => {
        const r = await fetch('/api/services');
        return {status: r.status, type: r.headers.get('content-type'), body: await r.json()};
    }""")
    assert answer["status"] == 200 and answer["type"] == "application/json"
    by_name = {s["service"]: s for s in answer["body"]}
    assert by_name["web"]["locked"] == {"by": "octocat", "reason": "incident 42"}
    assert by_name["web"]["queue"] == [{"sha": fleet["v2"], "state": "queued", "blocked_by": LOCK_WAIT}]
    assert by_name["web"]["in_sync"] is False and by_name["api"]["in_sync"] is True
    assert by_name["api"]["live"]["sha"] == fleet["api"]


def test_empty_dashboard_tells_a_newcomer_what_to_do(served, page):
    sign_in(page, served)
    expect(page.get_by_role("heading", level=1, name="Mainline")).to_be_visible()
    expect(page.get_by_text("No services yet. Merge a pull request into a repository with a")).to_be_visible()


def test_a_visitor_signs_in_with_github_and_out_again(served, page):
    page.goto(served + "/")
    # Not signed in: the dashboard sends the browser to GitHub's authorize page.
    expect(page.get_by_role("heading", name="Authorize Mainline")).to_be_visible()
    page.get_by_label("Username").fill("octocat")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(served + "/")
    expect(page.get_by_role("heading", level=1, name="Mainline")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "mainline_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.goto(served + "/logout")
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    assert page.request.get(served + "/api/services").status == 401


def test_a_stranger_with_a_github_account_is_refused_at_sign_in(served, page):
    page.goto(served + "/")
    page.get_by_label("Username").fill("mallory")
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_text("not a collaborator of any repository Mainline deploys")).to_be_visible()
    assert page.request.get(served + "/api/services").status == 401
