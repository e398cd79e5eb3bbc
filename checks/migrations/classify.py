"""Classify one migration file as expand or contract, by its language, with a reason per operation
and, for each contract one, the rule it breaks and the safe way to do it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath

from checks.inputs import MigrationFinding, MigrationRule
from checks.migrations.limits import refusal
from checks.migrations.operation import CONTRACT, EXPAND, Operation, cannot_tell, settle
from checks.migrations.python_ops import python_operations
from checks.migrations.rails import rails_operations
from checks.migrations.rules import safe_way
from checks.migrations.sql import sql_operations
from checks.migrations.squawk import squawk_operations


def classify_migration(
    path: str, text: str, sql_linter: Callable[[str], list[Operation]] | None = None
) -> MigrationFinding:
    """Expand or contract, with a reason per operation (contract reasons first).

    `sql_linter` adds findings for SQL; by default squawk's, when squawk is on PATH."""
    why = refusal(text)
    if why is not None:
        return refused(path, why)
    linter = sql_linter if sql_linter is not None else squawk_operations
    suffix = PurePosixPath(path).suffix
    try:
        if suffix == ".py":
            ops = python_operations(text)
        elif suffix == ".rb":
            ops = rails_operations(text)
        else:
            ops = sql_operations(text) + linter(text)
    except (RecursionError, MemoryError):
        ops = [cannot_tell("the file nests too deeply to read")]
    return finding(path, settle(ops, transactional=_transactional(suffix, text),
                                backfill_locks=_backfill_locks(suffix, text)))


def _backfill_locks(suffix: str, text: str) -> bool:
    """Whether rows changed next to a schema change are changed under its lock: a Rails migration
    runs in one transaction unless `disable_ddl_transaction!`, a Django one unless `atomic = False`."""
    if suffix == ".rb":
        return "disable_ddl_transaction!" not in text
    if suffix == ".py" and re.search(r"^class Migration\b", text, re.MULTILINE):
        return re.search(r"\batomic\s*=\s*False\b", text) is None
    return False


def _transactional(suffix: str, text: str) -> bool:
    """Whether validating a constraint added NOT VALID earlier in the file holds the add's lock, as
    the peers judge it: Rails migrations run in a transaction unless `disable_ddl_transaction!`
    (strong_migrations); SQL only inside an explicit BEGIN (squawk's default); Django and Alembic
    files are read like the SQL they run, outside an assumed transaction."""
    if suffix == ".rb":
        return "disable_ddl_transaction!" not in text
    if suffix == ".py":
        return False
    return re.search(r"^\s*(?:BEGIN|START\s+TRANSACTION)\b", text, re.IGNORECASE | re.MULTILINE) is not None


def refused(path: str, why: str) -> MigrationFinding:
    """A migration not read (too large, too deeply nested): contract, cannot tell."""
    return finding(path, [cannot_tell(f"not read: {why}")])


def finding(path: str, ops: list[Operation]) -> MigrationFinding:
    if not ops:
        return MigrationFinding(path, EXPAND, ["expand: no schema change found"])
    kind = CONTRACT if any(op.kind == CONTRACT for op in ops) else EXPAND
    ordered = [op for op in ops if op.kind == CONTRACT] + [op for op in ops if op.kind == EXPAND]
    reasons: list[str] = []
    rules: list[MigrationRule] = []
    for op in ordered:
        line = f"{op.kind}: {op.what}"
        if line in reasons:
            continue
        reasons.append(line)
        if op.kind == CONTRACT:
            rule = op.rule or "changing-table-structure"
            rules.append(MigrationRule(line, rule, safe_way(rule)))
    return MigrationFinding(path, kind, reasons, rules)
