"""Bounded HTTP health probes.

What a replica answers is untrusted: a probe reads at most `MAX_BODY` bytes, finishes within
one wall-clock deadline (connect, headers and body together, even when the body trickles in a
byte at a time), follows redirects only on the same host and port, and keeps a short,
printable excerpt. Probe URLs are built with urllib from the address we chose and a path, so a
path like `@host:port/x` stays a path and never becomes the authority.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

MAX_BODY = 64 * 1024
MAX_OUTPUT = 500  # characters of a probe's line kept in reports and events
MAX_REDIRECTS = 3
PROBE_TIMEOUT = 2.0
LOCAL_HOST = "127.0.0.1"
REDIRECTS = (301, 302, 303, 307, 308)
# Characters left as they are in a request path; everything else is percent-encoded, so no
# space, CR or LF can reach the request line.
PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_SPACES = re.compile(r"\s+")


class ProbeURLError(ValueError):
    """A probe URL would not name the host and port we meant."""


def sanitize(text: str, limit: int = MAX_OUTPUT) -> str:
    """Printable characters only, whitespace collapsed, at most `limit` characters."""
    printable = "".join(c if c.isprintable() else " " for c in text)
    line = _SPACES.sub(" ", printable).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def probe_url(host: str, port: int, path: str) -> str:
    """`http://host:port/path`, whatever `path` holds; raises ProbeURLError otherwise."""
    raw, _, query = path.split("#", 1)[0].partition("?")
    # A path that does not start with "/" is made one: "@evil:1/x" becomes "/@evil:1/x".
    clean = quote(raw if raw.startswith("/") else "/" + raw, safe=PATH_SAFE)
    url = urlunsplit(("http", _netloc(host, port), clean, quote(query, safe=PATH_SAFE + "?"), ""))
    parts = urlsplit(url)
    if parts.netloc != _netloc(host, port) or parts.hostname != host.lower() or parts.port != port:
        raise ProbeURLError(f"probe URL {sanitize(url, 200)!r} does not name {_netloc(host, port)}")
    return url


def lb_url(listen: str, path: str) -> str:
    """The probe URL through a load balancer listening on `listen` (IP:port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "*", "0.0.0.0", "::"):
        host = LOCAL_HOST
    return probe_url(host, int(port), path)


@dataclass(frozen=True)
class ProbeResult:
    url: str
    status: int | None  # None: nothing answered in time
    excerpt: str = ""  # sanitised start of the body, or of the error
    body_bytes: int = 0

    @property
    def healthy(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def line(self) -> str:
        """What came back, for events and reports: short and printable."""
        return sanitize(f"GET {self.url}: {self.status if self.status is not None else ''} {self.excerpt}")


class _DeadlineReader(io.RawIOBase):
    """Reads from a socket, each read waiting at most until the shared deadline."""

    def __init__(self, conn: _DeadlineSocket):
        self._conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._conn.arm()
        return self._conn.sock.recv_into(buffer)


class _DeadlineSocket:
    """The parts of a socket http.client uses, every call bounded by one deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline

    def arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("probe deadline passed")
        self.sock.settimeout(remaining)

    def sendall(self, data: bytes) -> None:
        self.arm()
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        # http.client closes the connection while the response still reads from it (a real
        # socket counts its makefile()s); the probe closes the socket itself when done.
        pass


class _BoundedConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, deadline: float):
        super().__init__(host, port, timeout=max(0.001, deadline - time.monotonic()))
        self._deadline = deadline
        self.raw: socket.socket | None = None

    def connect(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("probe deadline passed")
        self.raw = socket.create_connection((self.host, self.port), timeout=remaining)
        self.sock = _DeadlineSocket(self.raw, self._deadline)


# One GET: (url, deadline) -> (status, Location, at most MAX_BODY bytes of body).
Getter = Callable[[str, float], tuple[int, str | None, bytes]]


def _get_once(url: str, deadline: float) -> tuple[int, str | None, bytes]:
    """One GET: the status, the Location header, and at most MAX_BODY bytes of body."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = _BoundedConnection(parts.hostname or LOCAL_HOST, parts.port or 80, deadline)
    try:
        conn.request("GET", target, headers={"Connection": "close", "User-Agent": "mainline-probe"})
        resp = conn.getresponse()
        body = resp.read(MAX_BODY)  # never more, whatever the body's length
        return resp.status, resp.getheader("Location"), body
    finally:
        conn.close()
        if conn.raw is not None:
            conn.raw.close()


def _same_origin(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return (b.scheme, b.hostname, b.port or 80) == (a.scheme, a.hostname, a.port or 80)


def probe(url: str, timeout: float = PROBE_TIMEOUT, *, get: Getter | None = None,
          follow: Callable[[str], str] | None = None) -> ProbeResult:
    """GET `url` within `timeout` seconds in all, following same-host redirects (busybox httpd
    sends /health to /health/). 2xx is healthy; no answer in time is status None. `get` makes
    one request (plain HTTP by default; the load balancer's TLS passes its own), and `follow`
    vets a redirect's target (by default: rebuilt as a probe URL of the same checked host)."""
    get = get or _get_once
    deadline = time.monotonic() + timeout
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = get(current, deadline)
            if status not in REDIRECTS or not location:
                # Only the start is kept: sanitising 64 KiB to show 300 characters would waste memory.
                return ProbeResult(current, status, sanitize(body[:2048].decode("utf-8", "replace"), 300), len(body))
            following = urljoin(current, location.strip())
            if not _same_origin(current, following):
                return ProbeResult(current, status, sanitize(f"redirect to another host refused: {following}", 300),
                                   len(body))
            if follow is not None:
                current = follow(following)
                continue
            parts = urlsplit(following)
            current = probe_url(parts.hostname or LOCAL_HOST, parts.port or 80,
                                parts.path + (f"?{parts.query}" if parts.query else ""))
        return ProbeResult(current, status, f"more than {MAX_REDIRECTS} redirects", len(body))
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ProbeURLError is a ValueError
        return ProbeResult(current, None, sanitize(f"{type(exc).__name__}: {exc}", 300))
