"""The webhook inbox's rows, as the Store sees them: which deliveries are due, claiming one,
recording a failed attempt with backoff and a dead letter, replaying one, and listing them.
(The hot write path, group commit, is bot.infra.db.inbox.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from bot.domain import utcnow
from bot.errors import NotFoundError
from bot.infra.db.base import SessionSource
from bot.infra.db.models import DeliveryRow


class DeliveryStore(SessionSource):
    """Mixed into bot.infra.db.store.Store."""

    def delivery(self, delivery_id: str) -> DeliveryRow:
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None:
                raise NotFoundError(f"no delivery {delivery_id}")
            return row

    def finish_delivery(self, delivery_id: str, outcome: str) -> None:
        with self.session() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.delivery_id == delivery_id)
                      .values(processed_at=utcnow(), next_attempt_at=None, outcome=outcome[:2000]))

    def unprocessed_deliveries(self, older_than: float, limit: int = 500) -> list[str]:
        """Deliveries due for processing (oldest first), received at least `older_than` s ago:
        not processed, not dead-lettered, and not waiting out a retry's backoff."""
        now = utcnow()
        with self.session() as s:
            return list(s.scalars(select(DeliveryRow.delivery_id).where(
                DeliveryRow.processed_at.is_(None), DeliveryRow.dead_at.is_(None),
                DeliveryRow.received_at <= now - timedelta(seconds=older_than),
                or_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.next_attempt_at <= now))
                .order_by(DeliveryRow.received_at).limit(limit)))

    def claim_delivery(self, delivery_id: str, owner: str, stale_after: float = 120,
                       max_attempts: int | None = None) -> bool:
        """Take a due delivery for processing, counting the attempt; False when it is done,
        dead-lettered, waiting out its backoff, or another worker claimed it less than
        `stale_after` seconds ago (a crashed worker's claim goes stale). The attempt is counted
        here, not on failure, so a delivery that kills the worker outright is dead-lettered
        after `max_attempts` claims too, instead of crash-looping every worker that takes it."""
        now = utcnow()
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id, with_for_update=True)  # one claimant at a time
            if row is None or row.processed_at is not None or row.dead_at is not None:
                return False
            if row.next_attempt_at is not None and row.next_attempt_at > now:
                return False  # a queued task for it may still run: the backoff holds
            if row.outcome and row.outcome.startswith("claimed by ") and row.outcome != f"claimed by {owner}":
                claimed_at = row.claimed_at or row.received_at
                if claimed_at > now - timedelta(seconds=stale_after):
                    return False
            attempts = row.attempts or 0
            if max_attempts is not None and attempts >= max_attempts:
                row.dead_at, row.outcome = now, f"dead-lettered after {attempts} attempt(s)"
                row.last_error = row.last_error or f"the worker stopped while handling it, {attempts} time(s)"
                return False
            row.attempts, row.outcome, row.claimed_at = attempts + 1, f"claimed by {owner}", now
            return True

    def fail_delivery(self, delivery_id: str, error: str, max_attempts: int,
                      retry_in: Callable[[int], float]) -> bool:
        """Record that the claimed attempt failed, and release the claim. The delivery is taken
        again `retry_in(attempts)` seconds from now or, when that was its `max_attempts`th
        attempt, dead-lettered (True): then only a person replays it (`retry_delivery`)."""
        now = utcnow()
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no delivery {delivery_id}")
            row.attempts = max(row.attempts or 0, 1)
            row.last_error, row.outcome = error[:500], None
            if row.attempts >= max_attempts:
                row.dead_at, row.next_attempt_at = now, None
                row.outcome = f"dead-lettered after {row.attempts} attempt(s)"
            else:
                row.next_attempt_at = now + timedelta(seconds=retry_in(row.attempts))
            return row.dead_at is not None

    def retry_delivery(self, delivery_id: str) -> None:
        """Take a delivery again at once, from its first attempt (a person replays a dead letter)."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no delivery {delivery_id}")
            row.dead_at = row.next_attempt_at = row.processed_at = row.outcome = None
            row.attempts = 0

    def deliveries(self, failed: bool = False, limit: int = 50) -> list[dict]:
        """Recorded deliveries, newest first; `failed`: dead-lettered, or failing and not yet done."""
        query = select(DeliveryRow).order_by(DeliveryRow.received_at.desc(), DeliveryRow.delivery_id)
        if failed:
            query = query.where(or_(DeliveryRow.dead_at.is_not(None),
                                    and_(DeliveryRow.last_error.is_not(None), DeliveryRow.processed_at.is_(None))))
        with self.session() as s:
            return [self._delivery_view(row) for row in s.scalars(query.limit(limit))]

    @staticmethod
    def _delivery_view(row: DeliveryRow) -> dict:
        def iso(at):
            return at.isoformat() + "Z" if at else None

        return {"delivery_id": row.delivery_id, "event": row.event, "action": row.action,
                "received_at": iso(row.received_at), "processed_at": iso(row.processed_at),
                "attempts": row.attempts or 0, "next_attempt_at": iso(row.next_attempt_at),
                "last_error": row.last_error, "dead": row.dead_at is not None, "dead_at": iso(row.dead_at),
                "outcome": row.outcome}

