"""The webhook inbox's write path: group commit, leader/follower.

Many request threads each want one row durably written before they answer GitHub. Whichever
thread finds no write under way becomes the leader: it writes every delivery waiting at that
moment in one transaction, then wakes the others with whether each delivery was new. Writes no
longer queue one by one for SQLite's lock, and no thread hop sits in the leader's own path. The
worker takes new rows from the inbox itself (`bot.wiring.poll_inbox`)."""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import weakref
from dataclasses import dataclass

from sqlalchemy import Executable, insert

from bot.infra.db.models import DeliveryRow
from bot.infra.db.store import Store, utcnow

log = logging.getLogger("mainline.inbox")

# A WAL checkpoint inside a webhook's commit costs that request ~10 ms, so the writer's own
# connection never checkpoints on its own: the worker does (Store.checkpoint), and, should no
# worker run, the writer folds the log in once every this many deliveries.
CHECKPOINT_EVERY = 4000


def _close(*resources) -> None:
    for resource in resources:
        resource.close()


@dataclass
class _Pending:
    delivery_id: str
    event: str
    action: str | None
    payload: str
    done: bool = False
    new: bool = False
    error: Exception | None = None


class Inbox:
    def __init__(self, store: Store):
        self.store = store
        self._cv = threading.Condition()
        self._waiting: list[_Pending] = []
        self._writing = False
        self._since_checkpoint = 0
        self._conn: sqlite3.Connection | None = None
        self._sqlite_path = store.engine.url.database if store.url.startswith("sqlite") else None
        self._insert: Executable
        if self._sqlite_path is None:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            # RETURNING says whether the row was new: psycopg reports no rowcount for this insert.
            self._insert = (pg_insert(DeliveryRow).on_conflict_do_nothing(index_elements=["delivery_id"])
                            .returning(DeliveryRow.delivery_id))
        else:
            self._insert = insert(DeliveryRow).prefix_with("OR IGNORE")

    def record(self, delivery_id: str, event: str, action: str | None, payload: str, timeout: float = 30) -> bool:
        """Durably record a delivery; False when this delivery id was recorded before."""
        item = _Pending(delivery_id, event, action, payload)
        with self._cv:
            self._waiting.append(item)
            while not item.done and self._writing:
                if not self._cv.wait(timeout):
                    raise TimeoutError("the inbox did not confirm the write in time")
            if item.done:
                return self._result(item)
            self._writing, batch, self._waiting = True, self._waiting, []
        try:
            self._write(batch)
        finally:
            with self._cv:
                for pending in batch:
                    pending.done = True
                self._writing = False
                self._cv.notify_all()
        return self._result(item)

    @staticmethod
    def _result(item: _Pending) -> bool:
        if item.error is not None:
            raise item.error
        return item.new

    def _write(self, batch: list[_Pending]) -> None:
        try:
            path = self._sqlite_path
            if path is not None:
                self._write_sqlite(path, batch)
            else:
                self._write_sqlalchemy(batch)
        except Exception as exc:  # every waiting request hears of the failure
            log.exception("inbox write of %d deliveries failed", len(batch))
            for item in batch:
                item.error = exc

    def _write_sqlalchemy(self, batch: list[_Pending]) -> None:
        seen: set[str] = set()
        now = utcnow()
        with self.store.engine.begin() as conn:
            for item in batch:
                if item.delivery_id in seen:
                    continue  # the same delivery twice in one batch: the second is a repeat
                result = conn.execute(self._insert, {
                    "delivery_id": item.delivery_id, "event": item.event, "action": item.action,
                    "received_at": now, "payload": item.payload})
                item.new = result.first() is not None
                seen.add(item.delivery_id)

    def _write_sqlite(self, path: str, batch: list[_Pending]) -> None:
        """The hot path on SQLite: one transaction on the writer's own connection (the ORM's
        per-row overhead was most of the acknowledgement's cost)."""
        if self._conn is None:
            self._conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                         check_same_thread=False)  # used by one leader at a time
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._lock_file = open(f"{path}.inbox-lock", "a")  # noqa: SIM115 - lives with the inbox
            weakref.finalize(self, _close, self._conn, self._lock_file)
        cursor = self._conn.cursor()
        # Leaders of other web processes queue on a file lock, which wakes the next one the moment
        # it is free; SQLite's own busy handler would sleep 1, 2, 5 … 100 ms between tries.
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            self._commit(cursor, batch)
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._since_checkpoint += len(batch)
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._since_checkpoint = 0
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @staticmethod
    def _commit(cursor: sqlite3.Cursor, batch: list[_Pending]) -> None:
        now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's DateTime text form on SQLite
        cursor.execute("BEGIN IMMEDIATE")
        try:
            for item in batch:
                cursor.execute(
                    "INSERT OR IGNORE INTO webhook_deliveries (delivery_id, event, action, received_at, payload) "
                    "VALUES (?, ?, ?, ?, ?)", (item.delivery_id, item.event, item.action, now, item.payload))
                item.new = cursor.rowcount == 1
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            for item in batch:
                item.new = False
            raise
