"""Classify one migration file as expand or contract, by its language, with a reason per operation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

from checks.inputs import MigrationFinding
from checks.migrations.operation import CONTRACT, EXPAND, Operation
from checks.migrations.python_ops import python_operations
from checks.migrations.rails import rails_operations
from checks.migrations.sql import sql_operations
from checks.migrations.squawk import squawk_operations


def classify_migration(
    path: str, text: str, sql_linter: Callable[[str], list[Operation]] | None = None
) -> MigrationFinding:
    """Expand or contract, with a reason per operation (contract reasons first).

    `sql_linter` adds findings for SQL; by default squawk's, when squawk is on PATH."""
    linter = sql_linter if sql_linter is not None else squawk_operations
    suffix = PurePosixPath(path).suffix
    if suffix == ".py":
        ops = python_operations(text)
    elif suffix == ".rb":
        ops = rails_operations(text)
    else:
        ops = sql_operations(text) + linter(text)
    return finding(path, ops)


def finding(path: str, ops: list[Operation]) -> MigrationFinding:
    if not ops:
        return MigrationFinding(path, EXPAND, ["expand: no schema change found"])
    kind = CONTRACT if any(op.kind == CONTRACT for op in ops) else EXPAND
    ordered = [op for op in ops if op.kind == CONTRACT] + [op for op in ops if op.kind == EXPAND]
    reasons: list[str] = []
    for op in ordered:
        line = f"{op.kind}: {op.what}"
        if line not in reasons:
            reasons.append(line)
    return MigrationFinding(path, kind, reasons)
