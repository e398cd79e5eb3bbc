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
from werkzeug.serving import make_server

from bot import webhook
from tests.conftest import SECRET

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts, and this
# machine's closed network refuses each try; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXAMPLES = Path(__file__).resolve().parents[2] / "bot" / "sandbox" / "contracts" / "examples"


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
def served(settings, wired):
    """The real app (`create_app(settings, wired)`) behind werkzeug's threaded server; yields its base URL."""
    from bot.app import create_app

    server = make_server("127.0.0.1", 0, create_app(settings, wired), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def deliver_merge(base_url: str, wired, repo, sha: str, number: int) -> None:
    """GitHub tells the running server that PR `number` merged as `sha`; the worker takes it."""
    payload = json.loads((EXAMPLES / "pull_request.closed.json").read_text())
    pr = payload["pull_request"]
    pr.update(number=number, merged=True, merged_at="2026-11-26T10:00:00Z", merge_commit_sha=sha,
              merged_by=dict(pr["user"]))
    pr["base"]["ref"] = "master"
    payload["number"] = number
    payload["repository"]["clone_url"] = repo.clone_url
    body = json.dumps(payload).encode()
    delivery = str(uuid.uuid4())
    answer = requests.post(f"{base_url}/github/webhook", data=body, timeout=10, headers={
        "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": webhook.sign(SECRET, body), "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    wired.process_delivery(delivery)
