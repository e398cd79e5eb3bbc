"""A named lock shared by every process on one database: web processes and workers that each
find-then-create on GitHub (a deployment per sha, a comment per marker) take it around the pair,
so two processes reporting on one sha at once cannot both create.

PostgreSQL: a session advisory lock (pg_advisory_lock) on a connection held for the block; a
database that restarts meanwhile drops it with the connection, and the block goes on (the lock
is a courtesy against duplicates, never a reason to hold a deploy back). SQLite: all processes
share the file, so a byte-range lock (fcntl) at the name's offset of a `.locks` file beside it.
Within one process, callers serialise themselves (the reporter's own lock)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger("mainline.store")

_SPAN = 1 << 20  # byte offsets in the SQLite lock file


def _key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class MutexStore:
    engine: Engine
    url: str

    @contextlib.contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        if self.engine.dialect.name == "postgresql":
            with self._pg_mutex(name):
                yield
            return
        path = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not path or path == ":memory:":
            yield
            return
        with self._file_mutex(f"{path}.locks", _key(name) % _SPAN):
            yield

    @contextlib.contextmanager
    def _pg_mutex(self, name: str) -> Iterator[None]:
        key = _key(name)
        try:
            conn = self.engine.connect()
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        except Exception as exc:  # the database is away: go on unserialised rather than stop
            log.warning("no lock %s (going on without it): %s", name, exc)
            yield
            return
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.close()
            except Exception:  # the connection died: the lock died with it
                conn.invalidate()

    @staticmethod
    @contextlib.contextmanager
    def _file_mutex(path: str, offset: int) -> Iterator[None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, offset)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)
        finally:
            os.close(fd)
