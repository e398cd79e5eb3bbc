"""Migration safety: find migrations in a diff, classify each as expand or contract, and decide.

*Expand* leaves a schema the running (old) release still works with: new tables, nullable
columns, indexes built concurrently. *Contract* breaks or blocks it: dropped or renamed tables
and columns, type changes, NOT NULL without a default, index builds that lock writes. A contract
migration is never applied blindly, and a release that carries one is never rolled back
automatically past it.

Every contract operation names the rule it breaks (squawk / strong_migrations names) and `rules`
gives the safe way to make the same change. What cannot be read is "contract: cannot tell".

One concern per module: `detect` (which paths); what each file does: `sql` + `sql_text` (SQL),
`python_ops` -> `django_ops` / `alembic_ops` + `alembic_columns` (Python, over `py_ast` and
`data_code`), `rails` + `rails_text`, `squawk`; `operation` (the unit, and `settle`: what a
migration does as a whole), `limits` (hostile input), `classify` (one file's verdict), `gate`.
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
