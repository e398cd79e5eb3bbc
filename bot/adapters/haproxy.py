"""One HAProxy per (service, environment): its config, its process, its runtime API.

The config is ours and static; replicas come and go as dynamic servers through the admin
socket (`add server`, `enable server`, `set server … state drain|maint`, `del server`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bot.errors import RolloutError

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


class HAProxyError(RolloutError):
    """The load balancer could not be started or refused a runtime command."""


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
                 binary: str = HAPROXY_BIN):
        self.dir = Path(state_dir) / "haproxy" / f"{service}-{environment}"
        self.service = service
        self.listen = listen
        self.binary = binary
        self.config_path = self.dir / "haproxy.cfg"
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
        """Start haproxy unless it already runs. Returns True when it was started now."""
        if self.pid() is not None:
            if self._wait_answers(5.0):
                return False
            raise HAProxyError(f"haproxy for {self.service} runs (pid {self.pid()}) but its admin socket "
                               f"{self.socket_path} does not answer")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid_path.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)
        self.config_path.write_text(CONFIG.format(socket=self.socket_path, service=self.service,
                                                  listen=self.listen, backend=BACKEND))
        proc = subprocess.run([self.binary, "-D", "-f", str(self.config_path), "-p", str(self.pid_path)],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise HAProxyError(f"haproxy for {self.service} on {self.listen} did not start: "
                               f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        if not self._wait_answers(5.0):
            raise HAProxyError(f"haproxy for {self.service} started but its admin socket does not answer")
        return True

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
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
            status = row.get("status")
            state = "maint" if "MAINT" in status else "drain" if "DRAIN" in status else "ready"
            result.append(Server(row["svname"], row.get("addr", ""), state, int(row.get("scur") or 0)))
        return result

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
