"""SQLAlchemy tables. The Alembic migration in bot/infra/db/schema/ creates exactly these."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ServiceRow(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    repo: Mapped[str] = mapped_column(String(200))
    clone_url: Mapped[str] = mapped_column(String(500))
    branch: Mapped[str] = mapped_column(String(200), default="master")
    config_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    config_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The production branch head as last seen by a webhook or the reconciler: pages read it
    # from here, so no page view makes a GitHub or git call.
    head_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    head_seen_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class EnvironmentRow(Base):
    """One service in one environment: the unit a worker leases, so at most one deploy is in flight."""

    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("service_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    name: Mapped[str] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lease_token: Mapped[int] = mapped_column(Integer, default=0)
    live_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"), nullable=True)
    # The invariant watchdog: since when the head has been neither live, queued, in flight nor
    # held by a named gate, and when that was last said out loud.
    unsynced_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sync_alerted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ReleaseRow(Base):
    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    environment: Mapped[str] = mapped_column(String(64))
    sha: Mapped[str] = mapped_column(String(64))
    image: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="live")  # live | retired | bad
    live_since: Mapped[datetime] = mapped_column(DateTime)
    deploy_id: Mapped[int | None] = mapped_column(ForeignKey("deploys.id"), nullable=True)


class DeployRow(Base):
    __tablename__ = "deploys"
    __table_args__ = (UniqueConstraint("service_id", "environment", "sha"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    environment: Mapped[str] = mapped_column(String(64))
    sha: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    blocked_by: Mapped[str | None] = mapped_column(Text, nullable=True)
    image: Mapped[str | None] = mapped_column(String(500), nullable=True)
    previous_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_image: Mapped[str | None] = mapped_column(String(500), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(100), default="github")
    manual: Mapped[int] = mapped_column(Integer, default=0)
    force_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    pull_numbers: Mapped[list] = mapped_column(JSON, default=list)
    revert_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Consecutive steps that raised unexpectedly; past a bound the deploy fails with the error.
    step_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class DeployEventRow(Base):
    """Append-only: never updated, never deleted."""

    __tablename__ = "deploy_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    deploy_id: Mapped[int | None] = mapped_column(ForeignKey("deploys.id"), nullable=True)
    service: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class DeliveryRow(Base):
    """The webhook inbox: one row per X-GitHub-Delivery."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    payload: Mapped[str] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A delivery whose handling raised is retried with backoff, then dead-lettered.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    dead_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class LockRow(Base):
    __tablename__ = "locks"
    __table_args__ = (UniqueConstraint("service", "environment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(64))  # "*" with environment "*" is a global freeze
    environment: Mapped[str] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("deploy_id", "gate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deploy_id: Mapped[int] = mapped_column(ForeignKey("deploys.id"))
    gate: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | granted | rejected
    by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ChatCardRow(Base):
    """Which chat message is each deploy's card, so every process edits the same one."""

    __tablename__ = "chat_cards"

    deploy_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(100))
    ts: Mapped[str] = mapped_column(String(40))


class ApiTokenRow(Base):
    """A bearer token for the API and dashboard; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))  # read | deploy
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WebSessionRow(Base):
    """A signed-in GitHub user's session; the cookie holds a random id, this row its SHA-256."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class PullRequestRow(Base):
    """PR metadata stored when a deploy carries it, so pages never ask GitHub per view."""

    __tablename__ = "pull_requests"
    __table_args__ = (UniqueConstraint("repo", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repo: Mapped[str] = mapped_column(String(200))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    author: Mapped[str] = mapped_column(String(100))
    merge_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stored_at: Mapped[datetime] = mapped_column(DateTime)
