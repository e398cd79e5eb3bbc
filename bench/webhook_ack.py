"""Webhook acknowledgement latency: Mainline's POST /github/webhook against a bare HMAC-and-202 floor.

Both are served the way `mainline serve` serves (gunicorn gthread, the same workers and threads:
the floor goes through bot.cli's own `serve` with only the app swapped), each a subprocess on a
free 127.0.0.1 port, measured one after the other in the same run (rounds in A-B-B-A order so a
drift in the machine's speed does not favour either). Mainline does the real thing: verify the
signature, parse the JSON, record the delivery durably in the SQLite inbox (group commit; the
worker takes it from there) in a fresh temporary state dir; no worker runs, so nothing competes
with the web process. The floor only checks the HMAC and answers 202.

Senders: threads with keep-alive connections, each POSTing octokit's pull_request.closed example
(made merged) with a unique X-GitHub-Delivery. After the HTTP table, an in-process micro-benchmark
times the pieces of the handler (HMAC, JSON, inbox write) alone and under contention.

Target: p99(mainline) / p99(floor) <= 1.5. The script reports; it exits non-zero only when a
request failed (non-2xx or a connection error).

    .venv/bin/python bench/webhook_ack.py [--senders 16] [--per-sender 150] [--rounds 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bot import webhook  # noqa: E402
from bot.infra.db.inbox import Inbox  # noqa: E402

SECRET = "bench-webhook-secret"
TARGET_RATIO = 1.5
EXAMPLE = ROOT / "sandbox" / "contracts" / "examples" / "pull_request.closed.json"


# -- the floor ------------------------------------------------------------------------------


def floor_app(settings, adapters=None):
    """What any webhook receiver must do at least: read the body, check the HMAC, answer 202."""
    from flask import Flask, jsonify, request

    app = Flask("webhook-floor")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    secret = settings.github_webhook_secret.get_secret_value()

    @app.post("/github/webhook")
    def github_webhook():
        body = request.get_data(cache=False)
        if not webhook.verify(secret, body, request.headers.get("X-Hub-Signature-256")):
            return jsonify(error="missing or wrong X-Hub-Signature-256"), 401
        return jsonify(queued=request.headers.get("X-GitHub-Delivery")), 202

    @app.get("/healthz")
    def healthz():
        return jsonify(ok=True)

    return app


def serve_floor(port: int, workers: int) -> None:
    # Swap only the app factory and run bot.cli's own `serve`: the floor then gets exactly the
    # gunicorn configuration Mainline gets, and cannot drift from it when that changes.
    import bot.app
    from bot import cli

    bot.app.create_app = floor_app
    cli.main(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)])


# -- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> Server:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen([*self.command, "--port", str(self.port)], env=self.env, cwd=ROOT,
                                        stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /healthz in {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def cpu_seconds(self) -> float:
        """CPU time the master and its workers have used so far (Linux /proc)."""
        return sum(_cpu_seconds(pid) for pid in [self.process.pid, *_children(self.process.pid)])

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _stat(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces; everything after its closing parenthesis splits cleanly.
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, ValueError):
                pass  # a process that ended while we looked
    return children


def _cpu_seconds(pid: int) -> float:
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# -- load -----------------------------------------------------------------------------------


@dataclass
class Load:
    senders: int
    per_sender: int  # measured requests per sender in one round
    warmup: int  # unmeasured requests per sender, on the same connection, before each round
    cap: float  # seconds a round may take


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU the server's processes used while measured

    def add(self, other: Result) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.wall += other.wall
        self.server_cpu += other.server_cpu


def merged_pr_body() -> bytes:
    payload = json.loads(EXAMPLE.read_text())
    pr = payload["pull_request"]
    pr.update(merged=True, merged_at="2026-11-26T10:00:00Z", merged_by=dict(pr["user"]),
              merge_commit_sha="0123456789abcdef0123456789abcdef01234567")
    return json.dumps(payload).encode()


def post(conn: http.client.HTTPConnection, body: bytes, signature: str) -> tuple[int, bytes]:
    conn.request("POST", "/github/webhook", body=body, headers={
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
    })
    answer = conn.getresponse()
    return answer.status, answer.read()


def run_round(server: Server, body: bytes, load: Load) -> Result:
    # GitHub signs the body only, so one signature serves every delivery of the same body.
    signature = webhook.sign(SECRET, body)
    results = [Result() for _ in range(load.senders)]
    started: list[float] = []

    def start() -> None:
        # Read the server's CPU before the clock starts: scanning /proc takes a few milliseconds.
        started.append(server.cpu_seconds())
        started.append(time.perf_counter())

    barrier = threading.Barrier(load.senders, action=start)
    finished = [0.0] * load.senders

    def sender(i: int) -> None:
        mine = results[i]
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for _ in range(load.warmup):
            try:
                post(conn, body, signature)
            except (OSError, http.client.HTTPException):
                conn.close()
        barrier.wait()
        deadline = time.perf_counter() + load.cap
        for _ in range(load.per_sender):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            try:
                status, answer = post(conn, body, signature)
            except (OSError, http.client.HTTPException) as exc:
                mine.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()  # http.client reconnects on the next request
                continue
            mine.latencies.append(time.perf_counter() - t0)
            if not 200 <= status < 300:
                mine.errors.append(f"HTTP {status}: {answer[:200]!r}")
        finished[i] = time.perf_counter()
        conn.close()

    threads = [threading.Thread(target=sender, args=(i,), name=f"sender-{i}") for i in range(load.senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu_before, clock_started = started
    total = Result(wall=max(finished) - clock_started, server_cpu=server.cpu_seconds() - cpu_before)
    for r in results:
        total.latencies += r.latencies
        total.errors += r.errors
    return total


# -- figures --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    if not ms:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "mean": float("nan"), "max": float("nan")}
    return {"n": len(ms), "p50": statistics.median(ms), "p99": percentile(ms, 99),
            "mean": statistics.fmean(ms), "max": max(ms)}


def print_http_table(results: dict[str, Result]) -> None:
    print(f"  {'server':<10} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
          f"{'max ms':>8} {'req/s':>7} {'server CPU ms/req':>17}")
    for name, r in results.items():
        s = summary(r.latencies)
        rate = s["n"] / r.wall if r.wall else 0.0
        sent = len(r.latencies) + len(r.errors)
        cpu = 1000 * r.server_cpu / sent if sent else float("nan")
        print(f"  {name:<10} {s['n']:>8} {len(r.errors):>6} {s['p50']:>8.2f} {s['p99']:>8.2f} {s['mean']:>8.2f} "
              f"{s['max']:>8.2f} {rate:>7.0f} {cpu:>17.2f}")


# -- in-process pieces ----------------------------------------------------------------------


def time_pieces(body: bytes, iterations: int, threads: int) -> dict[str, list[float]]:
    """Run the handler's steps one by one on a fresh wiring, timing each step separately."""
    from bot.settings import load_settings
    from bot.wiring import wire

    signature = webhook.sign(SECRET, body)
    with tempfile.TemporaryDirectory(prefix="mainline-pieces-") as tmp:
        wired = wire(load_settings(database_url=f"sqlite:///{tmp}/mainline.db", queue_url=f"sqlite:///{tmp}/queue.db",
                                   state_dir=Path(tmp) / "state", github_webhook_secret=SECRET))
        inbox = Inbox(wired.store)
        pieces: dict[str, list[float]] = {k: [] for k in ("hmac verify", "json + route", "inbox write")}
        lock = threading.Lock()
        barrier = threading.Barrier(threads)

        def worker(n: int) -> None:
            mine: dict[str, list[float]] = {k: [] for k in pieces}
            barrier.wait()
            for _ in range(n):
                delivery = str(uuid.uuid4())
                t0 = time.perf_counter()
                assert webhook.verify(SECRET, body, signature)
                t1 = time.perf_counter()
                payload = orjson.loads(body)
                assert wired.router.accepts("pull_request", payload["action"])
                t2 = time.perf_counter()
                assert inbox.record(delivery, "pull_request", payload["action"], body.decode("utf-8", "replace"))
                t3 = time.perf_counter()
                for key, seconds in zip(mine, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                    mine[key].append(seconds)
            with lock:
                for key, values in mine.items():
                    pieces[key] += values

        # Warm up: first connections, the ORM's statement cache.
        worker_threads = [threading.Thread(target=worker, args=(max(2, iterations // threads // 10),))
                          for _ in range(threads)]
        for t in worker_threads:
            t.start()
        for t in worker_threads:
            t.join()
        for values in pieces.values():
            values.clear()
        worker_threads = [threading.Thread(target=worker, args=(iterations // threads,)) for _ in range(threads)]
        for t in worker_threads:
            t.start()
        for t in worker_threads:
            t.join()
        wired.store.engine.dispose()
        return pieces


def print_pieces_table(by_threads: dict[int, dict[str, list[float]]]) -> None:
    heads = "".join(f" {'p50':>7} {'p99':>7} {'mean':>7} {'share':>6} |" for _ in by_threads)
    print(f"  {'':<12} |" + "".join(f" {f'{t} thread(s), ms':^30} |" for t in by_threads))
    print(f"  {'piece':<12} |" + heads)
    names = list(next(iter(by_threads.values())))
    totals = {t: sum(statistics.fmean(v) for v in pieces.values()) for t, pieces in by_threads.items()}
    for name in names:
        row = f"  {name:<12} |"
        for t, pieces in by_threads.items():
            s = summary(pieces[name])
            row += f" {s['p50']:>7.3f} {s['p99']:>7.3f} {s['mean']:>7.3f} {s['mean'] / 1000 / totals[t]:>6.0%} |"
        print(row)
    row = f"  {'sum of means':<12} |"
    for t in by_threads:
        row += f" {'':>7} {'':>7} {totals[t] * 1000:>7.3f} {'':>6} |"
    print(row)


# -- main -----------------------------------------------------------------------------------


def serve_workers_default() -> int:
    from bot.cli import serve

    return next(p.default for p in serve.params if p.name == "workers")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--per-sender", type=int, default=150, help="measured requests per sender, per server")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests per sender per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per server (A-B-B-A…)")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds a round may take")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: mainline serve's)")
    parser.add_argument("--pieces", type=int, default=800, help="iterations of the in-process micro-benchmark")
    # 8 is one gunicorn worker's threads in bot/cli.py; more would also wait for SQLAlchemy's pool (15).
    parser.add_argument("--piece-threads", type=int, default=8, help="threads of the contended micro-benchmark")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workers = args.workers or serve_workers_default()
    if args.serve_floor:
        serve_floor(args.port, workers)
        return 0

    body = merged_pr_body()
    load = Load(args.senders, max(1, args.per_sender // args.rounds), args.warmup, args.cap)
    with tempfile.TemporaryDirectory(prefix="mainline-webhook-ack-") as tmp:
        state = Path(tmp)
        env = {**os.environ, "GITHUB_WEBHOOK_SECRET": SECRET,
               "MAINLINE_DATABASE_URL": f"sqlite:///{state}/mainline.db",
               "MAINLINE_QUEUE_URL": f"sqlite:///{state}/queue.db",
               "MAINLINE_STATE_DIR": str(state / "state")}
        servers = {
            "mainline": Server("mainline", [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1",
                                            "--workers", str(workers)], env, state / "mainline.log"),
            "floor": Server("floor", [sys.executable, str(Path(__file__).resolve()), "--serve-floor",
                                      "--workers", str(workers)], env, state / "floor.log"),
        }
        results = {name: Result() for name in servers}
        try:
            for server in servers.values():
                server.start()
            for server in servers.values():
                server.wait_healthy()
            print(f"webhook ack latency: {len(body)} byte pull_request.closed (merged), {args.senders} keep-alive "
                  f"senders, {load.per_sender * args.rounds} measured requests each per server "
                  f"({args.rounds} rounds, {args.warmup} warm-up each)")
            print(f"  both served by `mainline serve`'s gunicorn (gthread, {workers} workers, the threads bot/cli.py "
                  f"sets) on 127.0.0.1; mainline's state: {state}")
            order = list(servers)
            for k in range(args.rounds):
                for name in order if k % 2 == 0 else reversed(order):
                    results[name].add(run_round(servers[name], body, load))
        finally:
            for server in servers.values():
                server.stop()
        print()
        print_http_table(results)
        ratio = summary(results["mainline"].latencies)["p99"] / summary(results["floor"].latencies)["p99"]
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        print(f"  p99 mainline / p99 floor = {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict})")
        print(f"  (closed loop: each sender waits for its answer, so mean latency ~ {args.senders} / throughput; "
              f"a slower handler shows as queueing)")
        errors = [(name, e) for name, r in results.items() for e in r.errors]
        for name, error in errors[:20]:
            print(f"  error ({name}): {error}")
        if len(errors) > 20:
            print(f"  … and {len(errors) - 20} more errors")

    print()
    print(f"handler pieces in-process (no HTTP, no gunicorn), {args.pieces} deliveries per column; inbox = "
          f"bot.infra.db.inbox.Inbox.record; under {args.piece_threads} threads the times include waiting for locks:")
    print_pieces_table({t: time_pieces(body, args.pieces, t) for t in (1, args.piece_threads)})
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
