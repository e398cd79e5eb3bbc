"""Deploy locks (one environment, or the global freeze) and approvals of held deploys."""

from __future__ import annotations

from sqlalchemy import select

from bot.domain import utcnow
from bot.errors import NotFoundError
from bot.infra.db.base import SessionSource
from bot.infra.db.models import ApprovalRow, LockRow

FREEZE = "*"


class LockStore(SessionSource):
    def lock(self, service: str, environment: str, by: str, reason: str) -> LockRow:
        with self.session() as s:
            row = s.scalar(select(LockRow).where(LockRow.service == service, LockRow.environment == environment))
            if row is None:
                row = LockRow(service=service, environment=environment, by=by, reason=reason, created_at=utcnow())
                s.add(row)
            else:
                row.by, row.reason = by, reason
            return row

    def unlock(self, service: str, environment: str) -> bool:
        with self.session() as s:
            row = s.scalar(select(LockRow).where(LockRow.service == service, LockRow.environment == environment))
            if row is None:
                return False
            s.delete(row)
            return True

    def lock_for(self, service: str, environment: str) -> LockRow | None:
        """The lock holding this service back: its own, or a global freeze."""
        with self.session() as s:
            own = s.scalar(select(LockRow).where(LockRow.service == service, LockRow.environment == environment))
            return own or s.scalar(select(LockRow).where(LockRow.service == FREEZE, LockRow.environment == FREEZE))

    def approval(self, deploy_id: int, gate: str) -> ApprovalRow | None:
        with self.session() as s:
            return s.scalar(select(ApprovalRow).where(ApprovalRow.deploy_id == deploy_id, ApprovalRow.gate == gate))

    def request_approval(self, deploy_id: int, gate: str) -> ApprovalRow:
        with self.session() as s:
            row = s.scalar(select(ApprovalRow).where(ApprovalRow.deploy_id == deploy_id, ApprovalRow.gate == gate))
            if row is None:
                row = ApprovalRow(deploy_id=deploy_id, gate=gate, status="pending", created_at=utcnow())
                s.add(row)
            return row

    def decide_approval(self, deploy_id: int, gate: str, by: str, granted: bool, reason: str) -> ApprovalRow:
        with self.session() as s:
            row = s.scalar(select(ApprovalRow).where(ApprovalRow.deploy_id == deploy_id, ApprovalRow.gate == gate))
            if row is None:
                raise NotFoundError(f"deploy {deploy_id} has no approval pending for {gate}")
            row.status, row.by, row.reason = ("granted" if granted else "rejected"), by, reason
            return row

    def pending_approvals(self, deploy_id: int) -> list[ApprovalRow]:
        with self.session() as s:
            return list(s.scalars(select(ApprovalRow).where(ApprovalRow.deploy_id == deploy_id,
                                                            ApprovalRow.status == "pending")))
