"""Environment leases: one worker moves an environment at a time, fenced by a token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.domain import TERMINAL_STATES, DeployState, utcnow
from bot.errors import LeaseLostError
from bot.infra.db.base import SessionSource, rowcount
from bot.infra.db.models import DeployRow, EnvironmentRow


class LeaseStore(SessionSource):
    def release_leases_held_by(self, owner: str) -> int:
        """Free every environment lease `owner` holds; the number freed. Only for a process
        that is exiting: a thread of it may still believe it holds one."""
        with self.session() as s:
            mine = (EnvironmentRow.lease_owner == owner) | EnvironmentRow.lease_owner.startswith(f"{owner}/")
            result = s.execute(update(EnvironmentRow).where(mine).values(lease_owner=None, lease_expires_at=None))
            return rowcount(result)

    # -- leases -------------------------------------------------------------------------------

    def acquire_lease(self, env_id: int, owner: str, seconds: float) -> int | None:
        """Take the environment's lease if free or expired; return the new fencing token."""
        now = utcnow()
        with self.session() as s:
            # FOR UPDATE: on PostgreSQL two workers would otherwise both read a free lease and both
            # take it with the same token (SQLite's BEGIN IMMEDIATE already serialises this).
            env = s.get_one(EnvironmentRow, env_id, with_for_update=True)
            if env.lease_owner and env.lease_owner != owner and env.lease_expires_at and env.lease_expires_at > now:
                return None
            env.lease_owner = owner
            env.lease_expires_at = now + timedelta(seconds=seconds)
            env.lease_token = (env.lease_token or 0) + 1
            return env.lease_token

    def renew_lease(self, env_id: int, token: int, seconds: float) -> bool:
        with self.session() as s:
            result = s.execute(update(EnvironmentRow)
                               .where(EnvironmentRow.id == env_id, EnvironmentRow.lease_token == token)
                               .values(lease_expires_at=utcnow() + timedelta(seconds=seconds)))
            return rowcount(result) == 1

    def release_lease(self, env_id: int, token: int) -> None:
        with self.session() as s:
            s.execute(update(EnvironmentRow)
                      .where(EnvironmentRow.id == env_id, EnvironmentRow.lease_token == token)
                      .values(lease_owner=None, lease_expires_at=None))

    def expired_or_idle_envs(self) -> list[EnvironmentRow]:
        """Environments with work that no live lease is doing."""
        now = utcnow()
        with self.session() as s:
            open_states = [st.value for st in DeployState if st not in TERMINAL_STATES]
            busy = select(DeployRow.service_id, DeployRow.environment).where(DeployRow.state.in_(open_states))
            pairs = set(s.execute(busy).all())
            rows = []
            for env in s.scalars(select(EnvironmentRow)):
                if (env.service_id, env.name) in pairs and (env.lease_expires_at is None or env.lease_expires_at < now):
                    rows.append(env)
            return rows

    def _fence(self, s: Session, service_id: int, environment: str, token: int) -> None:
        current = s.scalar(select(EnvironmentRow.lease_token).where(
            EnvironmentRow.service_id == service_id, EnvironmentRow.name == environment))
        if current != token:
            raise LeaseLostError(f"lease token {token} is stale (now {current})")
