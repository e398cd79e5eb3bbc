"""One HAProxy per (service, environment): its config, its process, its runtime API.

The config is ours and static; replicas come and go as dynamic servers through the admin
socket (`add server`, `enable server`, `set server … state drain|maint`, `del server`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bot.config_values import check_listen, check_name, printable
from bot.errors import MainlineError, RolloutError
from bot.infra.targets.docker.tls import REDIRECT, TlsSettings

HAPROXY_BIN = "/usr/sbin/haproxy"
BACKEND = "replicas"
# sun_path is 108 bytes; a deep state dir would overflow it.
MAX_SOCKET_PATH = 100

# Why each setting: a request that lands on a replica going away must be retried elsewhere,
# never surfaced to the client. `retry-on` re-sends the (buffered, idempotent) request when the
# connection is refused or the server closes without answering; `redispatch 1` makes every
# retry pick another server; `http-reuse never` keeps no idle server connections, so a drained
# server really reaches zero connections and can be deleted.
CONFIG = """\
# Written by Mainline; dynamic servers live in the runtime API, not here.
global
    stats socket {socket} mode 600 level admin
    stats timeout 30s
    maxconn 4096
    # Two load balancers on one address must fail loudly, never share its traffic.
    noreuseport

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout queue 5s
    timeout http-request 10s
    timeout http-keep-alive 2s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout
    http-reuse never
    option http-server-close

frontend {service}
    bind {listen}
    default_backend {backend}

backend {backend}
    balance roundrobin
"""


# HAProxy's built-in Prometheus exporter on a loopback port of its own, scraped by Prometheus
# (the canary's per-server counts); the port is chosen once and kept in the state dir.
METRICS = """
frontend mainline-metrics
    bind 127.0.0.1:{port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
"""


class HAProxyError(RolloutError):
    """The load balancer could not be started or refused a runtime command."""


class UnsafeConfigError(MainlineError):
    """A value that would be written into haproxy.cfg, a runtime command or a file path is not
    safe there. Never retried: it comes from the repository's config, not from the machine."""


def _safe_name(kind: str, value: str) -> str:
    try:
        return check_name(value)
    except ValueError as exc:
        raise UnsafeConfigError(f"load balancer {kind}: {exc}") from None


def _safe_listen(value: str) -> str:
    # The config schema checks this too; this is the last line before haproxy.cfg, where a
    # newline would start a section of the repository's choosing.
    try:
        return check_listen(value)
    except ValueError as exc:
        raise UnsafeConfigError(f"load balancer {exc}") from None


def _safe_line(value: str, what: str) -> str:
    """One line of haproxy.cfg or one runtime command: no control characters, no `;` chaining."""
    if any(not c.isprintable() for c in value) or ";" in value:
        raise UnsafeConfigError(f"{what} holds a control character or ';': {printable(value)!r}")
    return value


@dataclass(frozen=True)
class Server:
    name: str
    address: str  # host:port
    state: str  # ready | drain | maint
    sessions: int

    @property
    def serving(self) -> bool:
        return self.state == "ready"


@dataclass(frozen=True)
class Counters:
    responses: int
    errors_5xx: int


class HAProxy:
    def __init__(self, state_dir: Path, service: str, environment: str, listen: str,
                 binary: str = HAPROXY_BIN, tls: TlsSettings | None = None):
        root = Path(state_dir) / "haproxy"
        self.dir = root / f"{_safe_name('service', service)}.{_safe_name('environment', environment)}"
        if self.dir.resolve().parent != root.resolve():
            raise UnsafeConfigError(f"the load balancer of {service}/{environment} would leave {root}")
        self.service = service
        self.where = "beside the worker"  # for messages: where this load balancer runs
        self.listen = _safe_listen(listen) if listen else listen
        self.binary = binary
        self.tls = tls
        self.config_path = self.dir / "haproxy.cfg"
        self.metrics_port_path = self.dir / "metrics.port"
        self.pid_path = self.dir / "haproxy.pid"
        socket_path = self.dir / "admin.sock"
        if len(str(socket_path)) > MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(self.dir).encode()).hexdigest()[:16]
            socket_path = Path("/tmp") / f"mainline-haproxy-{digest}.sock"
        self.socket_path = socket_path

    # -- process ---------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of our running haproxy, None when absent or the pid file is stale."""
        try:
            pid = int(self.pid_path.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        # A recycled pid belongs to someone else: only ours names our config file.
        return pid if str(self.config_path).encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None and self._answers()

    def ensure_running(self) -> bool:
        """Start haproxy unless it already runs with this config. Returns True when it was
        started now; a config that changed (TLS added, a certificate renewed) restarts it with
        the servers it had."""
        if self.pid() is not None:
            if self._wait_answers(5.0):
                if (self.tls is not None or self._had_tls()) and self._config_changed():
                    self._restart_keeping_servers()
                    return True
                return False
            raise HAProxyError(f"haproxy for {self.service} runs (pid {self.pid()}) but its admin socket "
                               f"{self.socket_path} does not answer")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid_path.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)
        self.config_path.write_text(self.render())
        proc = subprocess.run([self.binary, "-D", "-f", str(self.config_path), "-p", str(self.pid_path)],
                              check=False, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            # The exporter's port may have been taken since it was chosen: the next start picks another.
            self.metrics_port_path.unlink(missing_ok=True)
            raise HAProxyError(f"haproxy for {self.service} on {self.listen} did not start: "
                               f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        if not self._wait_answers(5.0):
            raise HAProxyError(f"haproxy for {self.service} started but its admin socket does not answer")
        return True

    def render(self) -> str:
        """haproxy.cfg, each value checked again: one value must never become two lines."""
        values = {"socket": _safe_line(str(self.socket_path), "the admin socket path"),
                  "service": _safe_name("service", self.service), "listen": _safe_listen(self.listen),
                  "backend": BACKEND}
        text = CONFIG.format(**values) + METRICS.format(port=self.metrics_port())
        if text.count("\n") != CONFIG.count("\n") + METRICS.count("\n"):
            raise UnsafeConfigError("a load balancer value would add lines to haproxy.cfg")
        return with_tls(text, self.service, self.listen, self.tls)

    def _had_tls(self) -> bool:
        try:
            return " ssl crt " in self.config_path.read_text()
        except OSError:
            return False

    def _config_changed(self) -> bool:
        try:
            return self.config_path.read_text() != self.render()
        except OSError:
            return True

    def _restart_keeping_servers(self) -> None:
        """Dynamic servers live only in the process: put them back, in their states, after."""
        kept = self.servers()
        self.stop()
        self.ensure_running()
        restore(self, kept)

    def metrics_port(self) -> int:
        """The exporter's port: the one recorded, else a free loopback port, recorded."""
        with contextlib.suppress(OSError, ValueError):
            return int(self.metrics_port_path.read_text().strip())
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics_port_path.write_text(f"{port}\n")
        return port

    def metrics_address(self) -> str | None:
        """host:port of the running exporter; None when this haproxy was started without one."""
        try:
            port = int(self.metrics_port_path.read_text().strip())
            config = self.config_path.read_text()
        except (OSError, ValueError):
            return None
        return f"127.0.0.1:{port}" if f"bind 127.0.0.1:{port}\n" in config else None

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.05)
        self.pid_path.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)

    def _answers(self) -> bool:
        try:
            self.command("show info")
            return True
        except HAProxyError:
            return False

    def _wait_answers(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._answers():
                return True
            time.sleep(0.05)
        return False

    # -- runtime API -----------------------------------------------------------------------

    def command(self, line: str) -> str:
        return self._send(_safe_line(line, "a load balancer command"))  # a newline or `;` would chain another

    def _send(self, line: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(str(self.socket_path))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise HAProxyError(f"haproxy admin socket {self.socket_path}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def _expect(self, line: str, *ok: str) -> str:
        answer = self.command(line).strip()
        if answer and not any(word in answer for word in ok):
            raise HAProxyError(f"haproxy refused `{line}`: {answer}")
        return answer

    def _stat_rows(self) -> list[dict[str, str]]:
        text = self.command("show stat").lstrip("# ")
        return [row for row in csv.DictReader(text.splitlines()) if row.get("pxname") == BACKEND]

    def servers(self) -> list[Server]:
        result = []
        for row in self._stat_rows():
            if row["svname"] in ("BACKEND", "FRONTEND"):
                continue
            status = row.get("status") or ""
            state = "maint" if "MAINT" in status else "drain" if "DRAIN" in status else "ready"
            result.append(Server(row["svname"], row.get("addr", ""), state, int(row.get("scur") or 0)))
        return result

    def stat_rows(self) -> list[dict[str, str]]:
        """`show stat` of the backend, a dict per server (and the BACKEND row)."""
        return self._stat_rows()

    def set_weight(self, name: str, weight: int) -> None:
        """The server's share in the round robin (0..256; 0 takes no new request)."""
        self._expect(f"set weight {BACKEND}/{name} {max(0, min(256, int(weight)))}")

    def weight(self, name: str) -> int:
        for row in self._stat_rows():
            if row["svname"] == name:
                return int(row.get("weight") or 0)
        return 0

    def server(self, name: str) -> Server | None:
        return next((s for s in self.servers() if s.name == name), None)

    def counters(self) -> Counters:
        for row in self._stat_rows():
            if row["svname"] == "BACKEND":
                codes = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
                return Counters(sum(int(row.get(c) or 0) for c in codes), int(row.get("hrsp_5xx") or 0))
        return Counters(0, 0)

    def used_connections(self, name: str) -> int:
        """Connections the server holds, from `show servers conn` and the session count."""
        used = 0
        lines = self.command(f"show servers conn {BACKEND}").splitlines()
        header = lines[0].lstrip("# ").split() if lines else []
        for line in lines[1:]:
            fields = line.split()
            if fields and fields[0] == f"{BACKEND}/{name}" and "used_cur" in header:
                used = int(fields[header.index("used_cur")])
        server = self.server(name)
        return used + (server.sessions if server else 0)

    def add(self, name: str, address: str) -> None:
        """Add the server (in maintenance, as dynamic servers start) unless it is there."""
        if self.server(name) is None:
            self._expect(f"add server {BACKEND}/{name} {address}", "New server registered")

    def enable(self, name: str) -> None:
        self._expect(f"set server {BACKEND}/{name} state ready")

    def drain(self, name: str) -> None:
        self._expect(f"set server {BACKEND}/{name} state drain")

    def maint(self, name: str) -> None:
        self._expect(f"set server {BACKEND}/{name} state maint")

    def wait_drained(self, name: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.used_connections(name) == 0:
                return True
            time.sleep(0.05)
        return False

    def delete(self, name: str, timeout: float = 10.0) -> None:
        """Maint then delete; haproxy refuses while a connection lingers, so retry a little."""
        if self.server(name) is None:
            return
        self.maint(name)
        deadline = time.monotonic() + timeout
        while True:
            answer = self.command(f"del server {BACKEND}/{name}").strip()
            if "deleted" in answer or self.server(name) is None:
                return
            if time.monotonic() > deadline:
                raise HAProxyError(f"haproxy would not delete server {name}: {answer}")
            time.sleep(0.1)


def restore(lb: HAProxy, servers: list[Server]) -> None:
    """Add `servers` to `lb` in their states in one exchange (each command checked, `;`-joined)."""
    lines = [line for s in servers if lb.server(s.name) is None for line in (
        f"add server {BACKEND}/{s.name} {s.address}", f"set server {BACKEND}/{s.name} state {s.state}")]
    if lines:
        lb._send("; ".join(_safe_line(line, "a load balancer command") for line in lines))


def with_tls(text: str, service: str, listen: str, tls: TlsSettings | None) -> str:
    """TLS on the frontend's bind line, and the redirecting HTTP frontend, each value checked."""
    if tls is None:
        return text
    cert = _safe_line(str(tls.certificate), "the certificate path")
    if any(c.isspace() for c in cert):
        raise UnsafeConfigError("the certificate path holds a space")
    bind = f"    bind {_safe_listen(listen)}\n"
    if text.count(bind) != 1:
        raise UnsafeConfigError("the load balancer's bind line is not where TLS goes")
    text = text.replace(bind, f"    bind {listen} ssl crt {cert}\n")
    if tls.http_listen:
        port = listen.rpartition(":")[2]
        extra = REDIRECT.format(service=_safe_name("service", service), http_listen=_safe_listen(tls.http_listen),
                                https_port="" if port == "443" else f":{port}")
        if extra.count("\n") != REDIRECT.count("\n"):
            raise UnsafeConfigError("a load balancer value would add lines to haproxy.cfg")
        text += extra
    return text
