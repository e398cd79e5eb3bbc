"""Python migrations: Django and Alembic, read with ast (never imported or run)."""

from __future__ import annotations

import ast

from checks.migrations.alembic_ops import alembic_operations
from checks.migrations.django_ops import django_operations
from checks.migrations.operation import Operation, cannot_tell
from checks.migrations.py_ast import module_functions


def python_operations(text: str) -> list[Operation]:
    """An Alembic revision (it has `upgrade()`) or a Django migration (`operations = [...]`)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return [cannot_tell(f"Python could not be parsed (line {exc.lineno}: {exc.msg})")]
    functions = module_functions(tree)
    entry = [name for name in ("upgrade",) if name in functions] or [
        name for name in ("schema_upgrades", "data_upgrades") if name in functions]  # Alembic's multidb-style
    if entry:
        return alembic_operations(functions, entry)
    operations = django_operations(tree, functions)
    if operations is not None:
        return operations
    return [cannot_tell("neither a Django migration (no `operations`) nor an Alembic one (no `upgrade()`)")]
