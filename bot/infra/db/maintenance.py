"""Mainline's own database, for its operator: which schema revision it is at, and backups.

SQLite is copied with SQLite's online backup API (what `sqlite3 mainline.db ".backup FILE"` does):
consistent while the bot runs. PostgreSQL goes through `pg_dump --format=custom` and `pg_restore
--clean`, with the connection's password in PGPASSWORD, never on a command line."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from bot.errors import MainlineError

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"


class DatabaseError(MainlineError):
    """The database is not where it must be (behind its schema, unreachable, a failed backup)."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: never migrated
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.current is None:
            return f"no schema yet (head is {self.head}): run `mainline db upgrade`"
        if self.at_head:
            return f"{self.current} (head)"
        return f"{self.current}, behind head {self.head}: run `mainline db upgrade`"


def head_revision() -> str:
    script = ScriptDirectory(str(SCHEMA_DIR))
    heads = script.get_heads()
    if len(heads) != 1:
        raise DatabaseError(f"the migrations have {len(heads)} heads ({', '.join(heads)}); expected one")
    return heads[0]


def schema_state(url: str) -> SchemaState:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as exc:  # an unreachable server, a bad URL: said, not a traceback
        raise DatabaseError(f"cannot read the schema revision of {_safe(url)}: {type(exc).__name__}: {exc}") from exc
    finally:
        engine.dispose()
    return SchemaState(current, head_revision())


def require_current(url: str) -> None:
    """Stop a process that must not migrate by itself when the schema is not at head."""
    state = schema_state(url)
    if not state.at_head:
        raise DatabaseError(f"the database schema is at {state.describe()} "
                            "(MAINLINE_MIGRATE_ON_START=false leaves migrating to the operator)")


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise DatabaseError(f"{url} is not a file that can be backed up")
    return Path(database)


def _pg_env(url: str) -> dict[str, str]:
    parsed = make_url(url)
    env = dict(os.environ)
    for name, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                        ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value is not None:
            env[name] = str(value)
    return env


def _pg_tool(name: str, args: list[str], url: str) -> None:
    tool = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if tool is None:
        raise DatabaseError(f"`{name}` not found: install PostgreSQL's client (apt-get install postgresql-client)")
    done = subprocess.run([str(tool), *args], env=_pg_env(url), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise DatabaseError(f"{name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def backup(url: str, target: Path) -> str:
    """Write a consistent copy of the database to `target`; says what it wrote."""
    target = Path(target)
    if make_url(url).get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        dest = sqlite3.connect(target)
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
        return f"backed up {_safe(url)} to {target} ({target.stat().st_size} bytes, SQLite backup API)"
    if make_url(url).get_backend_name() == "postgresql":
        _pg_tool("pg_dump", ["--format=custom", "--no-owner", f"--file={target}"], url)
        return f"backed up {_safe(url)} to {target} ({target.stat().st_size} bytes, pg_dump custom format)"
    raise DatabaseError(f"no backup for {make_url(url).get_backend_name()} databases")


def restore(url: str, source: Path) -> str:
    """Replace the database's content with the backup at `source`. Stop web and worker first."""
    source = Path(source)
    if not source.is_file():
        raise DatabaseError(f"no backup at {source}")
    if make_url(url).get_backend_name() == "sqlite":
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        live = sqlite3.connect(_sqlite_path(url))
        try:
            backup_db.backup(live)
        finally:
            live.close()
            backup_db.close()
    elif make_url(url).get_backend_name() == "postgresql":
        _pg_tool("pg_restore", ["--clean", "--if-exists", "--no-owner", "--single-transaction",
                                f"--dbname={make_url(url).database}", str(source)], url)
    else:
        raise DatabaseError(f"no restore for {make_url(url).get_backend_name()} databases")
    return f"restored {_safe(url)} from {source}; schema at {schema_state(url).describe()}"
