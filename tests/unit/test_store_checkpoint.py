"""The worker folds SQLite's write-ahead log into the database (the web process's inbox writer
turns its own auto-checkpoint off and leaves that to it). The checkpoint must actually run: inside
the transaction SQLAlchemy opens (BEGIN IMMEDIATE) SQLite refuses it with "database table is
locked", and the worker logged that warning every 2 seconds of a demo while the log grew."""

from __future__ import annotations

import sqlite3

from bot.auth import ApiTokens
from bot.infra.db.store import Store


def test_checkpoint_folds_the_write_ahead_log(tmp_path):
    path = tmp_path / "mainline.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    ApiTokens(store).create("reader", "read")
    store.checkpoint()
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        busy, frames, folded = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        reader.close()
    assert busy == 0 and frames == folded
