"""The scale set-up, outside pytest: real PostgreSQL and Redis on free ports, the GitHub stand-in
hosting N sample-app repositories, a webhook relay that sends some deliveries twice (as GitHub's
redelivery does: same X-GitHub-Delivery), and the bot as separate processes (`mainline serve`
with gunicorn workers, several `mainline worker`s). Used by bench/burst.py, bench/lead_time.py and
tests/chaos/. Everything listens on 127.0.0.1 only; every container and HAProxy it makes carries
the run's unique service names, and `Rig.stop()` removes them."""

from __future__ import annotations

import glob
import http.server
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.github import GitHubSandbox  # noqa: E402
from sandbox.sample_app import write_sample_app  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's request lines

SECRET = "rig-webhook-secret"
TOKEN = "rig-token"
ENDED = {"live", "superseded", "reverted", "failed"}


class RigError(Exception):
    """A part of the set-up did not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(interval)
    return False


# -- PostgreSQL and Redis ------------------------------------------------------------------------


class Postgres:
    """A throw-away cluster (fsync off) in its own directory; restartable for chaos."""

    def __init__(self, root: Path):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
        if not found:
            raise RigError("PostgreSQL not found: apt-get install -y postgresql")
        self.bin = Path(found[-1]).parent
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = root / "pg"
        self.root.mkdir(parents=True)
        if self.prefix:
            shutil.chown(self.root, "postgres", "postgres")
        self.data, self.port = self.root / "data", free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.prefix, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RigError(f"{tool} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                       capture_output=True, timeout=60)

    def restart(self) -> None:
        self.stop("fast")
        self.start()

    def connections(self) -> int:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'postgres' "
                               "AND pid <> pg_backend_pid()").fetchone()
        return int(row[0]) if row else 0


class Redis:
    def __init__(self, root: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RigError("redis-server not found: apt-get install -y redis-server")
        self.binary, self.root, self.port = binary, root / "redis", free_port()
        self.root.mkdir(parents=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        # Persistence on (appendonly): a restarted Redis keeps its queue, as a production one does.
        with open(self.root / "redis.log", "ab") as log:
            self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                                          "--daemonize", "no", "--dir", str(self.root)],
                                         stdout=log, stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis.from_url(self.url)
        if not wait_until(client.ping, 20, 0.05):
            raise RigError(f"redis-server did not start: {(self.root / 'redis.log').read_text()[-2000:]}")
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


# -- the webhook relay ---------------------------------------------------------------------------


class Relay:
    """GitHub → relay → the bot's web processes, as a load balancer in front of them: a delivery
    goes to the next process, and to another when that one refuses or answers 5xx. `twice` of
    the deliveries are posted a second time (same X-GitHub-Delivery), as GitHub's redelivery does."""

    def __init__(self, twice: float, seed: int = 13):
        self.targets: list[str] = []
        self.twice = twice
        self.rand = random.Random(seed)
        self.sent = 0
        self.doubled = 0
        self.failed = 0
        self.turn = 0
        self.lock = threading.Lock()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                code = relay.forward(body, headers)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/github/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="relay").start()

    def forward(self, body: bytes, headers: dict) -> int:
        with self.lock:
            again = self.rand.random() < self.twice
            self.sent += 1
            self.doubled += again
        code = 502
        for attempt in range(2 if again else 1):
            code = self.post_once(body, headers)
            if attempt == 0 and again:
                time.sleep(self.rand.random() * 0.5)
        if code >= 500:
            with self.lock:
                self.failed += 1
        return code

    def post_once(self, body: bytes, headers: dict) -> int:
        code = 502
        deadline = time.monotonic() + 30  # every process restarting at once: wait, as a LB's retry
        while time.monotonic() < deadline:
            with self.lock:
                self.turn += 1
                order = self.targets[self.turn % len(self.targets):] + self.targets[:self.turn % len(self.targets)]
            for target in order:
                try:
                    code = requests.post(target, data=body, headers=headers, timeout=10).status_code
                except requests.RequestException:
                    code = 502
                if code < 500:
                    return code
            time.sleep(0.2)
        return code

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up waiting
            super().handle_error(request, client_address)


class FaultProxy:
    """Between the bot and GitHub's REST API: passes requests on, or (mode "down") answers 502 to
    one and holds the next past the client's timeout, alternately, as an outage does."""

    def __init__(self, target: str, hang: float = 20.0):
        self.target = target.rstrip("/")
        self.mode = "ok"
        self.hang = hang
        self.faults = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                if proxy.mode == "down":
                    with proxy.lock:
                        proxy.faults += 1
                        hold = proxy.faults % 2 == 0
                    if hold:
                        time.sleep(proxy.hang)
                    self._answer(502, b'{"message": "Server Error"}', {"Content-Type": "application/json"})
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                try:
                    r = requests.request(self.command, proxy.target + self.path, data=body, headers=headers,
                                         timeout=60, allow_redirects=False)
                except requests.RequestException:
                    self._answer(502, b"{}", {"Content-Type": "application/json"})
                    return
                keep = {k: v for k, v in r.headers.items()
                        if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}
                self._answer(r.status_code, r.content, keep)

            def _answer(self, code: int, body: bytes, headers: dict) -> None:
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, *args) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="github-faults").start()

    def stop(self) -> None:
        self.mode = "ok"
        self.server.shutdown()
        self.server.server_close()


# -- the bot -------------------------------------------------------------------------------------


@dataclass
class Bot:
    """`mainline serve` processes (one gunicorn worker each, on ports of their own, behind the
    relay) and `mainline worker` processes, each in its own process group."""

    env: dict[str, str]
    log: Path
    ports: list[int]
    webs: list[subprocess.Popen | None] = field(default_factory=list)
    workers: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.webs = [None] * len(self.ports)

    @property
    def url(self) -> str:
        """The first web process that answers (the API is the same on each)."""
        for port, proc in zip(self.ports, self.webs, strict=True):
            if proc is not None and proc.poll() is None:
                return f"http://127.0.0.1:{port}"
        return f"http://127.0.0.1:{self.ports[0]}"

    def start_web(self, processes: int) -> None:
        for i in range(processes):
            self.start_web_at(i)

    def start_web_at(self, i: int) -> subprocess.Popen:
        port = self.ports[i]
        proc = self._spawn(["serve", "--port", str(port), "--workers", "1"])
        self.webs[i] = proc
        if not wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok, 60, 0.2):
            raise RigError(f"the bot's web process on {port} did not start; see {self.log}")
        return proc

    def start_worker(self) -> subprocess.Popen:
        proc = self._spawn(["worker"])
        self.workers.append(proc)
        return proc

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        with open(self.log, "ab") as log:
            return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env=self.env, stdout=log, stderr=log,
                                    cwd=ROOT, start_new_session=True)

    def alive_workers(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def processes(self) -> list[subprocess.Popen]:
        return [*self.workers, *(w for w in self.webs if w is not None)]

    def stop(self) -> None:
        for proc in self.processes():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the most resident memory the process ever had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- the apps ------------------------------------------------------------------------------------


def app_files(service: str, version: str, lb_port: int, replicas: int, bake: str,
              hosts: list[str | dict[str, str]] | None = None) -> dict[str, bytes]:
    """The sample app (busybox httpd FROM scratch, /health by CGI) named `service`; `hosts`: the
    Docker endpoints its production environment spreads over (deploy.yml's `hosts:`)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_sample_app(Path(tmp), f"{service} {version}", listen=f"127.0.0.1:{lb_port}")
        deploy = Path(tmp) / ".github" / "deploy.yml"
        text = deploy.read_text().replace("service: webapp", f"service: {service}")
        spread = f"\n    hosts: {json.dumps(hosts)}" if hosts else ""  # JSON is YAML
        text = text.replace("replicas: 2", f"replicas: {replicas}{spread}").replace("bake: 5s", f"bake: {bake}")
        deploy.write_text(text)
        return {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}


def iso_seconds(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=UTC).timestamp()


@dataclass
class Service:
    name: str
    repo: str
    lb_port: int
    merges: list[tuple[str, float, str]] = field(default_factory=list)  # (sha, merged at (epoch s), version)


class Rig:
    """The whole set-up. `scale=True`: PostgreSQL + Redis; else the embedded SQLite defaults."""

    def __init__(self, services: int, *, scale: bool = True, twice: float = 0.0, replicas: int = 1,
                 bake: str = "1s", reconcile: float = 2.0, prefix: str = "rig", extra_env: dict | None = None,
                 webs: int = 2, faults: bool = True, hosts: list[str | dict[str, str]] | None = None,
                 engines: list[str] | None = None):
        """`hosts`: deploy.yml's `hosts:` (several Docker hosts; the operator's MAINLINE_DOCKER_HOSTS
        and SSH settings go in `extra_env`); `engines`: how to reach each of those engines directly
        (to look at and clean up what runs there), default DOCKER_HOST's engine."""
        self.tmp = Path(tempfile.mkdtemp(prefix=f"mainline-{prefix}-"))
        self.tmp.chmod(0o755)  # PostgreSQL runs as `postgres` under it
        self.run_id = f"{prefix}{os.getpid() % 1000}{int(time.time()) % 10000}"
        self.pg: Postgres | None = None
        self.redis: Redis | None = None
        self.replicas, self.bake = replicas, bake
        self.engines: list[str | None] = list(engines or [(extra_env or {}).get("DOCKER_HOST")])
        self.relay = Relay(twice)
        self.github = GitHubSandbox(self.tmp / "github", webhook_url=self.relay.url, webhook_secret=SECRET,
                                    validate=False).start()
        # GitHub's address, as the bot and the payloads know it, is the fault proxy's: REST, git
        # (with faults=False, the stand-in's own: nothing between them).
        self.github_api = FaultProxy(self.github.url)
        if faults:
            self.github.shapes.base = self.github_api.url
        self.services: list[Service] = []
        self.bot: Bot | None = None
        try:
            if scale:
                self.pg, self.redis = Postgres(self.tmp), Redis(self.tmp)
                db, queue = self.pg.url, self.redis.url
            else:
                db, queue = f"sqlite:///{self.tmp}/mainline.db", f"sqlite:///{self.tmp}/queue.db"
            ports = [free_port() for _ in range(webs)]
            env = dict(os.environ, MAINLINE_DATABASE_URL=db, MAINLINE_QUEUE_URL=queue,
                       MAINLINE_STATE_DIR=str(self.tmp / "state"), MAINLINE_PUBLIC_URL=f"http://127.0.0.1:{ports[0]}",
                       MAINLINE_RECONCILE_SECONDS=str(reconcile), MAINLINE_LEASE_SECONDS="10",
                       MAINLINE_GITHUB_WRITE_INTERVAL="0", GITHUB_WEBHOOK_SECRET=SECRET,
                       GITHUB_API_URL=self.github.shapes.base,
                       GITHUB_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
            env.update(extra_env or {})
            for key in ("SLACK_BOT_TOKEN", "SLACK_API_URL", "SLACK_SIGNING_SECRET"):
                env.pop(key, None)
            (self.tmp / "state").mkdir()
            self.bot = Bot(env, self.tmp / "bot.log", ports)
            self.relay.targets = [f"http://127.0.0.1:{p}/github/webhook" for p in ports]
            for i in range(services):
                name = f"{self.run_id}s{i:02d}"
                svc = Service(name, f"acme/{name}", free_port())
                self.github.create_repo("acme", name, app_files(name, "v0", svc.lb_port, replicas, bake, hosts))
                self.services.append(svc)
        except BaseException:
            self.stop()
            raise

    def open_change(self, svc: Service, version: str, number_hint: int = 0) -> int:
        """A pull request changing the app's version (index.html and app.conf), opened on the stand-in."""
        branch = f"change-{version}-{number_hint}"
        base = self.github.head(svc.repo, "master")
        self.github.create_branch(svc.repo, branch, base)
        files = {"app.conf": f"version={svc.name} {version}\nhealth=ok\nroot=200\nworker=ok\nrelease=ok\n",
                 "www/index.html": f"{svc.name} {version}\n"}
        self.github.push_commit(svc.repo, branch, files, f"Ship {version}")
        return self.github.open_pull(svc.repo, branch, "master", f"Ship {version}")

    def merge_change(self, svc: Service, number: int, version: str) -> str:
        sha = self.github.merge_pull(svc.repo, number)
        svc.merges.append((sha, time.time(), version))
        return sha

    def merge(self, svc: Service, version: str, number_hint: int = 0) -> str:
        """A pull request opened and merged at once (a busy team's merge)."""
        return self.merge_change(svc, self.open_change(svc, version, number_hint), version)

    def serves(self, svc: Service) -> str | None:
        try:
            return requests.get(f"http://127.0.0.1:{svc.lb_port}/", timeout=3).text.strip()
        except requests.RequestException:
            return None

    # -- reading the bot and the stand-in ----------------------------------------------------------

    def api(self, path: str):
        response = requests.get(self.bot.url + path, timeout=30) if self.bot else None
        if response is None or not response.ok:
            raise RigError(f"GET {path}: {response.status_code if response is not None else 'no bot'}")
        return response.json()

    def deploys(self, svc: Service) -> list[dict]:
        return self.api(f"/api/deploys?service={svc.name}&limit=500")

    def events(self, svc: Service) -> list[dict]:
        """The events of the service's deploys (their steps, and the reconciler's repairs of a live
        release), as each deploy's history shows them, oldest first."""
        return sorted((e for d in self.deploys(svc) for e in d.get("events", [])), key=lambda e: e["id"])

    def stop(self) -> None:
        if self.bot is not None:
            self.bot.stop()
        self.github.stop()
        self.github_api.stop()
        self.relay.stop()
        for engine in self.engines:
            remove_apps([s.name for s in self.services], self.tmp / "state", engine)
        for part in (self.redis, self.pg):
            if part is not None:
                part.stop("immediate") if isinstance(part, Postgres) else part.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def remove_apps(names: list[str], state: Path, docker_host: str | None = None) -> None:
    import docker

    from bot.infra.targets.docker.haproxy import HAProxy

    for name in names:
        HAProxy(state, name, "production", "127.0.0.1:1").stop()
    try:
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
        for c in client.containers.list(all=True):
            if c.labels.get("mainline.service") in names:
                c.remove(force=True)
    except docker.errors.DockerException:
        pass
