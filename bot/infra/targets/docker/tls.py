"""TLS at the load balancer: the certificate (a PEM of certificate and key, under
MAINLINE_SECRETS_DIR), the redirecting HTTP frontend, and the bake's probe through HTTPS.

The probe checks no certificate chain: it talks to our own HAProxy on an address we chose, and
the certificate may name a public host rather than 127.0.0.1. What it reads is bounded like
bot/infra/http_probe's probe: one deadline for all of it, at most MAX_BODY bytes, same-origin
redirects only.
"""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bot.errors import SecretError
from bot.infra.http_probe import MAX_BODY, PROBE_TIMEOUT, ProbeResult, probe
from bot.infra.secrets import safe_file

MAX_PEM = 256 * 1024

# With tls.redirect: plain HTTP on its own address answers every request with a redirect to the
# HTTPS address (the client's host, the TLS port), and nothing else.
REDIRECT = """
frontend {service}_redirect
    bind {http_listen}
    http-request redirect location https://%[req.hdr(host),regsub(:[0-9]+$,)]{https_port}%[capture.req.uri] code 301
"""


@dataclass(frozen=True)
class TlsSettings:
    """HAProxy terminates TLS on `listen` with `certificate` (a PEM of certificate and key)."""

    certificate: Path
    http_listen: str | None = None  # plain HTTP here redirects to HTTPS


def certificate(secrets_dir: Path | None, name: str) -> Path:
    """The PEM's path under the secrets dir; SecretError (naming the file only) when it is not
    there, too big, or holds no certificate and private key."""
    path = safe_file(secrets_dir, name)
    try:
        with path.open("rb") as fh:
            pem = fh.read(MAX_PEM + 1)
    except OSError as exc:
        raise SecretError(f"tls certificate {name} could not be read ({exc.strerror or type(exc).__name__})") from None
    if len(pem) > MAX_PEM or b"-----BEGIN CERTIFICATE-----" not in pem or b"PRIVATE KEY-----" not in pem:
        raise SecretError(f"tls certificate {name} is not a PEM holding a certificate and its private key")
    return path


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _get_once(url: str, deadline: float) -> tuple[int, str | None, bytes]:
    parts = urlsplit(url)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("probe deadline passed")
    conn = http.client.HTTPSConnection(parts.hostname or "127.0.0.1", parts.port or 443, timeout=remaining,
                                       context=_context())
    sock = resp = None
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                     headers={"Connection": "close", "User-Agent": "mainline-probe"})
        sock = conn.sock
        resp = conn.getresponse()
        body = b""
        while len(body) < MAX_BODY and time.monotonic() < deadline:
            chunk = resp.read1(MAX_BODY - len(body))
            if not chunk:
                break
            body += chunk
        return resp.status, resp.getheader("Location"), body
    finally:
        # With "Connection: close" the response holds the socket (through its makefile) after the
        # connection lets go of it: each is closed here, never left for the garbage collector.
        if resp is not None:
            resp.close()
        conn.close()
        if sock is not None:
            sock.close()


def https_url(http_url: str) -> str:
    """The same probe URL through TLS."""
    parts = urlsplit(http_url)
    return urlunsplit(("https", parts.netloc, parts.path, parts.query, ""))


def probe_tls(url: str, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """GET an https URL of our load balancer, as http_probe.probe does for http."""
    return probe(url, timeout, get=_get_once, follow=lambda following: following)
