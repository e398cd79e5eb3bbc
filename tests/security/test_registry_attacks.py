"""A registry (or whoever answers on its address) cannot make Mainline hand over its registry
login: a token realm over plain HTTP to another host is refused before any credential is sent."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.infra.targets.docker.registry import RegistryAccess, RegistryAuthError, registry_access


def serve(handler_factory):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_factory)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_cleartext_token_realm_elsewhere_gets_no_login():
    seen: list[str | None] = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(401)
            # A realm on another host, in clear text (a name that is not loopback).
            self.send_header("WWW-Authenticate", 'Bearer realm="http://collector.example/token",service="x"')
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = serve(Registry)
    host = f"127.0.0.1:{server.server_address[1]}"
    access = registry_access("deployer", "s3cret-not-for-collectors")
    try:
        with pytest.raises(RegistryAuthError, match="over plain HTTP; refused"):
            access.login(host)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None]  # the registry saw no credential either


def test_an_unknown_challenge_scheme_is_refused_by_name():
    class Registry(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Negotiate')
            self.end_headers()

        def log_message(self, *args):
            pass

    server = serve(Registry)
    try:
        with pytest.raises(RegistryAuthError, match="asks for Negotiate authentication"):
            RegistryAccess(lambda host: None).login(f"127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
