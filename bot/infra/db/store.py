"""Durable state on SQLAlchemy (SQLite by default, PostgreSQL at scale)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import DeployState, utcnow
from bot.errors import NotFoundError, ServiceOwnedError
from bot.infra.db.deliveries import DeliveryStore
from bot.infra.db.leases import LeaseStore
from bot.infra.db.locks import LockStore
from bot.infra.db.models import (
    DeployEventRow,
    DeployRow,
    EnvironmentRow,
    ReleaseRow,
    ServiceRow,
)
from bot.infra.db.mutex import MutexStore

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"


def _sqlite_pragmas(engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # Take the write lock up front: two processes upgrading read locks deadlock in SQLite.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store(DeliveryStore, LeaseStore, LockStore, MutexStore):
    """Services, environments, deploys, events and releases; leases, locks and approvals and the
    webhook inbox's rows come from the mixins."""

    def __init__(self, url: str):
        self.url = url
        kwargs = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            _sqlite_pragmas(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(SCHEMA_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # The web and worker processes start together: one migrates, the other waits.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72431)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database without waiting on readers; on the driver's
        connection, since SQLAlchemy's would BEGIN IMMEDIATE first, where SQLite refuses a checkpoint."""
        if self.url.startswith("sqlite"):
            with contextlib.closing(self.engine.raw_connection()) as raw:
                raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- webhook inbox: bot/infra/db/deliveries.py (DeliveryStore) --------------------------

    # -- services ---------------------------------------------------------------------------

    def upsert_service(self, name: str, repo: str, clone_url: str, branch: str,
                       config_text: str | None = None, config_sha: str | None = None) -> ServiceRow:
        """The service `name`, bound to `repo` the first time it is seen. Another repository
        that declares the same name gets ServiceOwnedError and changes nothing."""
        try:
            return self._upsert_service(name, repo, clone_url, branch, config_text, config_sha)
        except IntegrityError:
            # Another process inserted it between our read and our insert: now it is an update.
            return self._upsert_service(name, repo, clone_url, branch, config_text, config_sha)

    def _upsert_service(self, name: str, repo: str, clone_url: str, branch: str,
                        config_text: str | None, config_sha: str | None) -> ServiceRow:
        with self.session() as s:
            row = s.scalar(select(ServiceRow).where(ServiceRow.name == name).with_for_update())
            if row is None:
                row = ServiceRow(name=name, repo=repo, clone_url=clone_url, branch=branch)
                s.add(row)
            elif row.repo != repo:
                raise ServiceOwnedError(name, row.repo, repo)
            row.clone_url, row.branch = clone_url, branch
            if config_text is not None:
                row.config_text, row.config_sha = config_text, config_sha
            s.flush()
            return row

    def set_head(self, service_id: int, sha: str | None) -> None:
        """Record the production branch head as just observed (pages read it from here)."""
        with self.session() as s:
            s.execute(update(ServiceRow).where(ServiceRow.id == service_id)
                      .values(head_sha=sha, head_seen_at=utcnow()))

    def service_of_repo(self, repo: str) -> ServiceRow | None:
        with self.session() as s:
            return s.scalar(select(ServiceRow).where(ServiceRow.repo == repo).order_by(ServiceRow.id))

    def service(self, name: str) -> ServiceRow:
        with self.session() as s:
            row = s.scalar(select(ServiceRow).where(ServiceRow.name == name))
            if row is None:
                raise NotFoundError(f"unknown service {name!r}")
            return row

    def services(self) -> list[ServiceRow]:
        with self.session() as s:
            return list(s.scalars(select(ServiceRow).order_by(ServiceRow.name)))

    def services_of_repo(self, repo: str) -> list[ServiceRow]:
        with self.session() as s:
            return list(s.scalars(select(ServiceRow).where(ServiceRow.repo == repo)))

    def environment(self, service_id: int, name: str) -> EnvironmentRow:
        query = select(EnvironmentRow).where(EnvironmentRow.service_id == service_id, EnvironmentRow.name == name)
        try:
            with self.session() as s:
                row = s.scalar(query)
                if row is None:
                    row = EnvironmentRow(service_id=service_id, name=name, lease_token=0)
                    s.add(row)
                    s.flush()
                return row
        except IntegrityError:
            # Another worker created it between our read and our insert (PostgreSQL does not
            # serialise the two as SQLite's BEGIN IMMEDIATE does): theirs is the row.
            with self.session() as s:
                return s.scalars(query).one()

    def environments(self, service_id: int) -> list[EnvironmentRow]:
        with self.session() as s:
            return list(s.scalars(select(EnvironmentRow).where(EnvironmentRow.service_id == service_id)
                                  .order_by(EnvironmentRow.name)))

    def set_unsynced(self, env_id: int, since, alerted_at) -> None:
        """The watchdog's record: since when the head is unaccounted for, and when it said so."""
        with self.session() as s:
            s.execute(update(EnvironmentRow).where(EnvironmentRow.id == env_id)
                      .values(unsynced_since=since, sync_alerted_at=alerted_at))

    # -- deploys --------------------------------------------------------------------------------

    def create_deploy(self, service_id: int, environment: str, sha: str, ref: str, requested_by: str,
                      manual: bool = False, pull_numbers: list[int] | None = None,
                      force_reason: str | None = None) -> tuple[DeployRow, bool]:
        """The deploy for (service, environment, sha): created (True), or the existing one (False)
        with `pull_numbers` added. Queuing an ended one again is a move: the engine's apply()."""
        try:
            with self.session() as s:
                row = s.scalar(self._deploy_of(service_id, environment, sha))
                if row is not None:
                    if pull_numbers:
                        row.pull_numbers = sorted(set(row.pull_numbers or []) | set(pull_numbers))
                    return row, False
                row = DeployRow(service_id=service_id, environment=environment, sha=sha, ref=ref,
                                state=DeployState.QUEUED.value, requested_by=requested_by,
                                manual=int(manual), pull_numbers=sorted(set(pull_numbers or [])),
                                force_reason=force_reason, attempts=0, step_failures=0, created_at=utcnow())
                s.add(row)
                s.flush()
                return row, True
        except IntegrityError:
            # Another process (a worker's reconciler, the other worker's intake) inserted it
            # between our read and our insert: theirs is the one deploy for this sha.
            with self.session() as s:
                row = s.scalar(self._deploy_of(service_id, environment, sha))
                if row is None:
                    raise
                if pull_numbers:
                    row.pull_numbers = sorted(set(row.pull_numbers or []) | set(pull_numbers))
                return row, False

    @staticmethod
    def _deploy_of(service_id: int, environment: str, sha: str):
        return select(DeployRow).where(DeployRow.service_id == service_id, DeployRow.environment == environment,
                                       DeployRow.sha == sha)

    def deploy(self, deploy_id: int) -> DeployRow:
        with self.session() as s:
            row = s.get(DeployRow, deploy_id)
            if row is None:
                raise NotFoundError(f"no deploy {deploy_id}")
            return row

    def deploys(self, service_id: int | None = None, environment: str | None = None,
                states: list[str] | None = None, limit: int = 100) -> list[DeployRow]:
        with self.session() as s:
            q = select(DeployRow)
            if service_id is not None:
                q = q.where(DeployRow.service_id == service_id)
            if environment is not None:
                q = q.where(DeployRow.environment == environment)
            if states:
                q = q.where(DeployRow.state.in_(states))
            return list(s.scalars(q.order_by(DeployRow.id.desc()).limit(limit)))

    def update_deploy(self, deploy_id: int, token: int | None, **fields) -> DeployRow:
        """Write a deploy's fields, only while `token` still holds its environment's lease."""
        with self.session() as s:
            row = s.get_one(DeployRow, deploy_id)
            if token is not None:
                self._fence(s, row.service_id, row.environment, token)
            for key, value in fields.items():
                setattr(row, key, value.value if isinstance(value, DeployState) else value)
            return row

    def add_event(self, deploy_id: int | None, service: str, environment: str, kind: str, message: str,
                  by: str | None = None, data: dict | None = None) -> None:
        with self.session() as s:
            s.add(DeployEventRow(deploy_id=deploy_id, service=service, environment=environment, at=utcnow(),
                                 kind=kind, message=message, by=by, data=data or {}))

    def events(self, deploy_id: int) -> list[DeployEventRow]:
        with self.session() as s:
            return list(s.scalars(select(DeployEventRow).where(DeployEventRow.deploy_id == deploy_id)
                                  .order_by(DeployEventRow.id)))

    def events_since(self, after_id: int = 0, limit: int = 500, service: str | None = None) -> list[DeployEventRow]:
        """The audit log, oldest first: every event after `after_id` (refusals too, which belong
        to no deploy), of one service or all."""
        with self.session() as s:
            query = select(DeployEventRow).where(DeployEventRow.id > after_id)
            if service is not None:
                query = query.where(DeployEventRow.service == service)
            return list(s.scalars(query.order_by(DeployEventRow.id).limit(limit)))

    # -- releases -------------------------------------------------------------------------------

    def live_release(self, service_id: int, environment: str) -> ReleaseRow | None:
        with self.session() as s:
            env = s.scalar(select(EnvironmentRow).where(EnvironmentRow.service_id == service_id,
                                                        EnvironmentRow.name == environment))
            if env is None or env.live_release_id is None:
                return None
            return s.get(ReleaseRow, env.live_release_id)

    def set_live(self, service_id: int, environment: str, sha: str, image: str, deploy_id: int | None,
                 token: int | None) -> ReleaseRow:
        with self.session() as s:
            if token is not None:
                self._fence(s, service_id, environment, token)
            env = s.scalars(select(EnvironmentRow).where(EnvironmentRow.service_id == service_id,
                                                         EnvironmentRow.name == environment)).one()
            if env.live_release_id:
                old = s.get_one(ReleaseRow, env.live_release_id)
                if old.sha == sha:
                    return old
                if old.status == "live":
                    old.status = "retired"
            release = ReleaseRow(service_id=service_id, environment=environment, sha=sha, image=image,
                                 status="live", live_since=utcnow(), deploy_id=deploy_id)
            s.add(release)
            s.flush()
            env.live_release_id = release.id
            return release

    def mark_release_bad(self, service_id: int, environment: str, sha: str) -> None:
        with self.session() as s:
            s.execute(update(ReleaseRow).where(ReleaseRow.service_id == service_id,
                                               ReleaseRow.environment == environment, ReleaseRow.sha == sha)
                      .values(status="bad"))

    def releases(self, service_id: int, environment: str, limit: int = 50) -> list[ReleaseRow]:
        with self.session() as s:
            return list(s.scalars(select(ReleaseRow).where(ReleaseRow.service_id == service_id,
                                                           ReleaseRow.environment == environment)
                                  .order_by(ReleaseRow.id.desc()).limit(limit)))
