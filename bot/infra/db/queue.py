"""The work queue on huey: SQLite by default, Redis at scale. It carries only ids; the
state lives in the store, so a lost or repeated task costs a delay, never a deploy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from huey import Huey, RedisHuey
from huey.storage import SqliteStorage

from bot.errors import MainlineError

log = logging.getLogger("mainline.queue")


class _WalNormalStorage(SqliteStorage):
    """huey's SQLite storage with WAL and synchronous=NORMAL: durable across a process crash
    (what the queue needs; the inbox is the record of truth) without an fsync per enqueue."""

    def _create_connection(self):
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn


def make_huey(url: str, name: str = "mainline"):
    if url.startswith("redis://"):
        return RedisHuey(name, url=url, results=False)
    if url.startswith("sqlite:///"):
        path = Path(urlparse(url).path if url.startswith("sqlite:////") else url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return Huey(name, results=False, storage_class=_WalNormalStorage, filename=str(path))
    raise ValueError(f"MAINLINE_QUEUE_URL: unsupported queue URL {url!r} (sqlite:///… or redis://…)")


class Queue:
    """Two kinds of work: process a recorded webhook delivery, and drive one service's environment."""

    def __init__(self, huey):
        self.huey = huey
        self._process: Callable[[str], None] | None = None
        self._drive: Callable[[str, str], None] | None = None

    def bind(self, process: Callable[[str], None], drive_env: Callable[[str, str], None]) -> None:
        # huey names a task by its function's module and name: defining both here keeps the
        # names the same in the web process (which only enqueues) and in the worker.
        def process_delivery(delivery_id: str) -> None:
            process(delivery_id)

        def drive(service: str, environment: str) -> None:
            drive_env(service, environment)

        self._process = self.huey.task(name="process_delivery")(process_delivery)
        self._drive = self.huey.task(name="drive")(drive)

    def process_delivery(self, delivery_id: str) -> None:
        if self._process is None:
            raise MainlineError("queue: process_delivery enqueued before bind()")
        self._process(delivery_id)

    def drive(self, service: str, environment: str) -> None:
        if self._drive is None:
            raise MainlineError("queue: drive enqueued before bind()")
        self._drive(service, environment)

    def pending(self) -> int:
        return self.huey.pending_count()

    def consumer(self, workers: int):
        return self.huey.create_consumer(workers=workers, worker_type="thread", periodic=False,
                                         initial_delay=0.05, backoff=1.15, max_delay=0.5)
