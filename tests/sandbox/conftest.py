"""Fixtures for the GitHub stand-in: a running sandbox with contract checks on, and a receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sandbox.github import GitHubSandbox

SECRET = "It's a Secret to Everybody"


class WebhookReceiver:
    """A tiny HTTP endpoint that records every webhook posted to it."""

    def __init__(self):
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "raw": raw,
                                          "json": json.loads(raw)})
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/github/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def events(self, event: str) -> list[dict]:
        return [r for r in self.received if r["headers"]["X-GitHub-Event"] == event]


@pytest.fixture
def receiver():
    rec = WebhookReceiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture
def sandbox(tmp_path, receiver):
    sb = GitHubSandbox(tmp_path / "github", webhook_url=receiver.url, webhook_secret=SECRET,
                       validate=True).start()
    yield sb
    sb.flush_webhooks()
    sb.stop()
    assert sb.violations == [], "the stand-in broke GitHub's contract"


@pytest.fixture
def api(sandbox):
    """A requests session that talks to the stand-in as a token-authenticated client."""
    session = requests.Session()
    session.headers["Authorization"] = "token ghp_sandbox"
    session.headers["Accept"] = "application/vnd.github+json"

    class Api:
        def __getattr__(self, verb):
            return lambda path, **kw: getattr(session, verb)(sandbox.url + path, timeout=10, **kw)

    yield Api()
    session.close()


@pytest.fixture
def webapp(sandbox):
    """The demo repository `acme/webapp` with one commit on master."""
    sandbox.create_repo("acme", "webapp", {"README.md": "# webapp\n", "VERSION": "1\n"})
    return "acme/webapp"
