"""The webhook inbox's write path: group commit.

Many request threads each want one row durably written before they answer GitHub. One writer
thread per process takes whatever is waiting, writes it in one transaction, queues the new ones
for the worker, and wakes each request with whether its delivery was new. Writes no longer wait
one by one for SQLite's lock. Should the hand-off to the queue fail, the inbox row is still the
record, and the reconciler re-queues every delivery left unprocessed."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import insert

from bot.adapters.models import DeliveryRow
from bot.adapters.store import Store, utcnow

log = logging.getLogger("mainline.inbox")


@dataclass
class _Pending:
    delivery_id: str
    event: str
    action: str | None
    payload: str
    done: threading.Event = field(default_factory=threading.Event)
    new: bool = False
    error: Exception | None = None


class Inbox:
    def __init__(self, store: Store, on_new: Callable[[str], None], max_batch: int = 64):
        self.store = store
        self.on_new = on_new
        self.max_batch = max_batch
        self._waiting: queue.Queue[_Pending] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()
        if store.url.startswith("sqlite"):
            self._insert = insert(DeliveryRow).prefix_with("OR IGNORE")
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self._insert = pg_insert(DeliveryRow).on_conflict_do_nothing(index_elements=["delivery_id"])

    def record(self, delivery_id: str, event: str, action: str | None, payload: str, timeout: float = 30) -> bool:
        """Durably record a delivery; False when this delivery id was recorded before."""
        self._ensure_writer()
        item = _Pending(delivery_id, event, action, payload)
        self._waiting.put(item)
        if not item.done.wait(timeout):
            raise TimeoutError("the inbox did not confirm the write in time")
        if item.error is not None:
            raise item.error
        return item.new

    def _ensure_writer(self) -> None:
        # Started on first use, not at construction: a gunicorn worker forks after the app is made.
        if self._writer is not None and self._writer.is_alive():
            return
        with self._start_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._run, daemon=True, name="inbox-writer")
                self._writer.start()

    def _run(self) -> None:
        while True:
            batch = [self._waiting.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        seen: set[str] = set()
        try:
            now = utcnow()
            with self.store.engine.begin() as conn:
                for item in batch:
                    if item.delivery_id in seen:
                        continue  # the same delivery twice in one batch: the second is a repeat
                    result = conn.execute(self._insert, [{
                        "delivery_id": item.delivery_id, "event": item.event, "action": item.action,
                        "received_at": now, "payload": item.payload}])
                    item.new = result.rowcount == 1
                    seen.add(item.delivery_id)
        except Exception as exc:  # noqa: BLE001 - every waiting request hears of the failure
            log.exception("inbox write of %d deliveries failed", len(batch))
            for item in batch:
                item.error = exc
                item.done.set()
            return
        for item in batch:
            if item.new:
                try:
                    self.on_new(item.delivery_id)
                except Exception:  # noqa: BLE001 - the reconciler re-queues what is left unprocessed
                    log.exception("could not queue delivery %s; the reconciler will", item.delivery_id)
        for item in batch:
            item.done.set()
