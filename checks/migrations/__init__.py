"""Migration safety: find migrations in a diff, classify each as expand or contract, and decide.

*Expand* leaves a schema the running (old) release still works with: new tables, nullable
columns, indexes built concurrently. *Contract* breaks or blocks it: dropped or renamed tables
and columns, type changes, NOT NULL without a default, index builds that lock writes. A contract
migration is never applied blindly, and a release that carries one is never rolled back
automatically past it.

One concern per module: `detect` (which paths), `sql`, `python_ops` (Django and Alembic),
`rails` and `squawk` (what each file does), `classify` (one file's verdict), `gate` (decisions).
"""

from checks.migrations.classify import classify_migration
from checks.migrations.detect import detect_migrations
from checks.migrations.gate import migrations_gate, rollback_allowed
from checks.migrations.operation import CONTRACT, Operation
from checks.migrations.sql import sql_operations

__all__ = [
    "CONTRACT",
    "Operation",
    "classify_migration",
    "detect_migrations",
    "migrations_gate",
    "rollback_allowed",
    "sql_operations",
]
