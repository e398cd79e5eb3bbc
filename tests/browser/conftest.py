"""Fixtures for tests that look at Mainline through a real browser: the app served by a real WSGI
server on 127.0.0.1, and Debian's headless Chromium driven by Playwright's sync API.

Chromium comes from Debian (`apt-get install chromium`), never from `playwright install`: this
machine has no route to Playwright's download hosts, and the Debian build is what CI installs."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr
from werkzeug.serving import make_server

from bot import webhook
from tests.conftest import SECRET
from tests.handlers.test_github_webhook import github_web_url, publish

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts, and this
# machine's closed network refuses each try; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXAMPLES = Path(__file__).resolve().parents[2] / "sandbox" / "contracts" / "examples"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per module, gone before the rest of the suite runs; each test opens
    its own context. Playwright gives every launch a fresh, empty profile (user data dir)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (`apt-get install -y chromium`); "
                    "the browser tests drive it and never download a browser of their own")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def settings(settings, tmp_path):
    """The shared settings, with a file:// GitHub base the bot clones the sample repository from."""
    return settings.model_copy(update={"github_web_url": github_web_url(tmp_path)})


OAUTH_CLIENT = ("Iv1.dashboardtest", "dashboard-test-secret")


@pytest.fixture
def github(tmp_path):
    """The local GitHub stand-in, here for its OAuth sign-in pages."""
    from sandbox.github import GitHubSandbox

    sandbox = GitHubSandbox(tmp_path / "github-standin", validate=True).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
    assert sandbox.violations == [], "the stand-in saw a request GitHub would refuse"


@pytest.fixture
def served(settings, wired, github):
    """The real app (`create_app(settings, wired)`) behind werkzeug's threaded server, signing people
    in with the GitHub stand-in's OAuth flow; yields its base URL."""
    from bot.app import create_app

    holder: dict = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    # The app's public URL is only known once its server listens, hence the late app. Its sign-in
    # goes to the stand-in; `wired` (the worker's side) still clones from the file:// base.
    holder["app"] = create_app(settings.model_copy(update={
        "public_url": base, "github_api_url": github.url, "github_web_url": github.url,
        "admins": "github:octocat",  # may read before any service exists (strangers may not)
        "github_oauth_client_id": OAUTH_CLIENT[0],
        "github_oauth_client_secret": SecretStr(OAUTH_CLIENT[1])}), wired)
    github.oauth.register_app(OAUTH_CLIENT[0], OAUTH_CLIENT[1], f"{base}/login/callback")
    thread = threading.Thread(target=server.serve_forever, name="dashboard-server", daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sign_in(page, base_url: str, login: str = "octocat") -> None:
    """What a person does: open the dashboard, land on GitHub's authorize page, say who they are."""
    page.goto(base_url + "/")
    page.get_by_label("Username").fill(login)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(base_url + "/")


def deliver_merge(base_url: str, wired, repo, sha: str, number: int, full_name: str | None = None) -> None:
    """GitHub tells the running server that PR `number` of `full_name` (octokit's example
    repository by default) merged as `sha`; the worker takes it."""
    payload = json.loads((EXAMPLES / "pull_request.closed.json").read_text())
    pr = payload["pull_request"]
    pr.update(number=number, merged=True, merged_at="2026-11-26T10:00:00Z", merge_commit_sha=sha,
              merged_by=dict(pr["user"]))
    pr["base"]["ref"] = "master"
    payload["number"] = number
    if full_name:  # a service belongs to its repository: another service needs another repository
        payload["repository"].update(full_name=full_name, name=full_name.split("/")[1])
        publish(repo, wired.settings, full_name)
    else:
        publish(repo, wired.settings)  # the bot clones from its configured GitHub base, never the payload's URL
    body = json.dumps(payload).encode()
    delivery = str(uuid.uuid4())
    answer = requests.post(f"{base_url}/github/webhook", data=body, timeout=10, headers={
        "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": webhook.sign(SECRET, body), "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    wired.process_delivery(delivery)
