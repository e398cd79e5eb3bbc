"""Real PostgreSQL and Redis for the scale-out suite, started here on 127.0.0.1 and free ports.

Both servers live for the session in a temporary directory and are stopped at its end. Each test
gets a database of its own (so a migration always runs on an empty one) and an empty Redis.
A missing server binary fails the suite with the Debian package to install: `make test` installs
`postgresql` and `redis-server` as root."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from bot.settings import load_settings
from tests.conftest import SECRET


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                    "install the Debian package `postgresql` (apt-get install -y postgresql)")
    return Path(found[-1]).parent


def _as_postgres() -> list[str]:
    # PostgreSQL refuses to run as root: as root, run its binaries as the `postgres` OS user.
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        pytest.fail("running as root needs `runuser` (Debian util-linux) to start PostgreSQL as `postgres`")
    return ["runuser", "-u", "postgres", "--"]


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}): {done.stdout}\n{done.stderr}")


@dataclass
class Postgres:
    port: int
    _names = itertools.count(1)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"mainline_t{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


@pytest.fixture(scope="session")
def postgres():
    bindir = _pg_bin()
    prefix = _as_postgres()
    root = Path(tempfile.mkdtemp(prefix="mainline-pg-"))
    if prefix:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()
    _run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
          "--encoding=UTF8", "--no-sync"], "initdb")
    # fsync off: the data dies with the test session anyway, and it keeps CREATE DATABASE quick.
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    _run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
          "-o", options, "start"], f"pg_ctl start (log: {root / 'server.log'})")
    try:
        yield Postgres(port)
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: install the Debian package `redis-server` "
                    "(apt-get install -y redis-server)")
    root = Path(tempfile.mkdtemp(prefix="mainline-redis-"))
    port = free_port()
    log = open(root / "redis.log", "w")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--dir", str(root)], stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not start: {(root / 'redis.log').read_text()}")
            time.sleep(0.05)
    try:
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database_url(postgres):
    """A fresh, empty PostgreSQL database for this test."""
    return postgres.url(postgres.create_database())


@pytest.fixture
def queue_url(redis_server):
    """The session's Redis, emptied for this test."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
def settings(tmp_path, database_url, queue_url):
    """The shared `settings` fixture, at scale: PostgreSQL and Redis instead of SQLite files."""
    return load_settings(database_url=database_url, queue_url=queue_url, state_dir=tmp_path / "state",
                         github_webhook_secret=SECRET, lease_seconds=5, reconcile_seconds=1,
                         github_web_url=f"file://{tmp_path}/github")


@pytest.fixture
def open_store():
    """Make Stores on a URL; their connection pools are closed when the test ends."""
    from bot.infra.db.store import Store

    stores: list[Store] = []

    def make(url: str) -> Store:
        stores.append(Store(url))
        return stores[-1]

    yield make
    for store in stores:
        store.engine.dispose()


@pytest.fixture
def open_wired(settings):
    """Wire the bot on this test's PostgreSQL and Redis, as many times as there are processes to play."""
    from bot.wiring import wire

    made = []

    def make(role: str = "all"):
        made.append(wire(settings, role=role))
        return made[-1]

    yield make
    for wired in made:
        wired.store.engine.dispose()
        wired.queue.huey.storage.conn.close()


@pytest.fixture
def wired(open_wired):
    return open_wired()


@pytest.fixture
def wired_pair(open_wired):
    """Two wirings on the same PostgreSQL and Redis, as two worker processes would have."""
    return open_wired("worker"), open_wired("worker")
