"""Attacks on the pages' buttons (issue 14): a signed-in deployer's browser is the target. The
session cookie goes with any request the browser makes, so each form carries a token bound to the
session (bot/pages.py), and who may act is decided from the production config on every POST."""

from __future__ import annotations

import pytest

from bot.auth import SESSION_COOKIE, WebSessions
from bot.pages import csrf_token
from tests.conftest import bearer
from tests.handlers.test_github_webhook import github_web_url, merged_pr, post, publish

UNLOCK = "/services/web/production/unlock"


@pytest.fixture
def settings(settings, tmp_path):
    return settings.model_copy(update={"github_web_url": github_web_url(tmp_path)})


@pytest.fixture
def web(client, wired, local_repo, settings):
    """`web` deployed from the sample repository; octocat deploys it; it is locked."""
    publish(local_repo, settings)
    config = (local_repo.work / ".github" / "deploy.yml").read_text()
    config = config.replace("    auto_deploy: true\n", '    auto_deploy: true\n    deployers: ["github:octocat"]\n')
    sha = local_repo.commit("Merge pull request #7 from octocat/feature", {".github/deploy.yml": config})
    post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-web")
    wired.process_delivery("d-web")
    wired.pipeline.lock("web", "production", "github:octocat", "incident 42")
    return sha


def signed_in(client, wired, login: str) -> str:
    session_id = WebSessions(wired.store).open(login)
    client.set_cookie(SESSION_COOKIE, session_id)
    return session_id


def still_locked(wired) -> bool:
    return wired.store.lock_for("web", "production") is not None


def test_attack_csrf_a_form_posted_from_another_site_is_refused(client, wired, web):
    signed_in(client, wired, "octocat")  # the deployer's browser carries the cookie anywhere
    for form in ({}, {"csrf": ""}, {"csrf": "0" * 64}):
        answer = client.post(UNLOCK, data=form, headers={"Origin": "https://evil.example"})
        assert answer.status_code == 403, form
        assert "CSRF token is missing or wrong" in answer.get_data(as_text=True)
    assert still_locked(wired)
    assert [d["state"] for d in wired.pipeline.deploys("web")] == ["queued"]


def test_attack_csrf_a_token_of_another_session_is_refused(client, wired, web):
    other = WebSessions(wired.store).open("octocat")  # the attacker's own session, same login
    signed_in(client, wired, "octocat")
    answer = client.post(UNLOCK, data={"csrf": csrf_token(other)})
    assert answer.status_code == 403 and still_locked(wired)


def test_the_token_of_the_page_lets_the_deployer_act(client, wired, web):
    session_id = signed_in(client, wired, "octocat")
    page = client.get("/services/web", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert f'name="csrf" value="{csrf_token(session_id)}"' in page
    answer = client.post(UNLOCK, data={"csrf": csrf_token(session_id)})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/services/web")
    assert not still_locked(wired)
    shown = client.get("/services/web").get_data(as_text=True)
    assert "Unlocked web in production." in shown


def test_attack_a_signed_in_non_deployer_is_refused_with_the_reason(client, wired, web):
    session_id = signed_in(client, wired, "mallory")
    page = client.get("/services/web").get_data(as_text=True)
    assert "<button" not in page  # a reader sees no buttons
    answer = client.post(UNLOCK, data={"csrf": csrf_token(session_id)})
    assert answer.status_code == 403
    assert "github:mallory is not among the deployers of web in production" in answer.get_data(as_text=True)
    assert still_locked(wired)


def test_attack_a_read_token_cannot_press_a_button(client, wired, web):
    answer = client.post(UNLOCK, headers=bearer(wired.store, "read"))
    assert answer.status_code == 403 and "may only read" in answer.get_json()["error"]
    assert still_locked(wired)


def test_a_deploy_token_acts_without_a_form_token(client, wired, web):
    # A bearer token is never sent by a browser on its own: no CSRF to guard against.
    answer = client.post(UNLOCK, headers=bearer(wired.store, "deploy"))
    assert answer.status_code == 303 and not still_locked(wired)
    assert wired.store.events_since()[-1].by.startswith("token:")


def test_attack_an_anonymous_post_is_refused(client, wired, web):
    assert client.post(UNLOCK).status_code == 401 and still_locked(wired)


def test_links_from_github_and_slack_lead_to_the_deploy_page():
    from bot.notify.github_reporter import GitHubReporter
    from bot.notify.slack_cards import card
    from bot.ports import DeployNotice

    notice = DeployNotice(deploy_id=12, service="web", environment="production", repo="acme/webapp",
                          sha="a" * 40, state="live", message="live")
    assert GitHubReporter(None, dashboard_url="https://mainline.example/").log_url(notice) == \
        "https://mainline.example/deploys/12"
    _, blocks = card(notice, {}, "https://mainline.example")
    assert any("<https://mainline.example/deploys/12|Deploy log>" in str(b) for b in blocks)


def test_a_deployer_approves_from_the_deploy_page_and_a_stranger_cannot(client, wired, web):
    deploy = wired.pipeline.deploys("web")[0]
    wired.store.request_approval(deploy["id"], "migrations")
    page = f"/deploys/{deploy['id']}"
    session_id = signed_in(client, wired, "mallory")
    assert "Approve" not in client.get(page).get_data(as_text=True)
    refused = client.post(f"{page}/approve", data={"csrf": csrf_token(session_id)})
    assert refused.status_code == 403 and wired.store.pending_approvals(deploy["id"])

    session_id = signed_in(client, wired, "octocat")
    assert ">Approve</button>" in client.get(page).get_data(as_text=True)
    answer = client.post(f"{page}/approve", data={"csrf": csrf_token(session_id)})
    assert answer.status_code == 303 and answer.headers["Location"].endswith(page)
    assert wired.store.pending_approvals(deploy["id"]) == []
    assert f"Approved deploy #{deploy['id']}." in client.get(page).get_data(as_text=True)
