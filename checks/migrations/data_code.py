"""Whether a migration's Python function only changes rows: a data migration or a batched backfill,
which the running release survives. Anything it cannot vouch for is not data-only."""

from __future__ import annotations

import ast

from checks.migrations.py_ast import DATA_CALLS, call_name

MAX_FOLLOW = 5  # how deep calls into the module's own functions are followed


def data_only(func: ast.FunctionDef, functions: dict[str, ast.FunctionDef], depth: int = 0,
              seen: frozenset[str] = frozenset(), known: dict[str, bool] | None = None) -> bool:
    """Every call is an ORM/row call (DATA_CALLS) or a data-only function of this module; the
    schema editor is used for nothing but `schema_editor.connection.alias`; nothing is imported.
    Each function is judged once (`known`), so helpers calling helpers cost linear time."""
    known = {} if known is None else known
    if func.name not in known:
        known[func.name] = depth <= MAX_FOLLOW and func.name not in seen and _judge(func, functions, depth, seen, known)
    return known[func.name]


def _judge(func: ast.FunctionDef, functions: dict[str, ast.FunctionDef], depth: int, seen: frozenset[str],
           known: dict[str, bool]) -> bool:
    editor = func.args.args[1].arg if len(func.args.args) > 1 else None
    allowed_editor_uses = 0
    editor_uses = 0
    for node in ast.walk(func):
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal)):
            return False
        if isinstance(node, ast.Name) and node.id == editor:
            editor_uses += 1
        if (isinstance(node, ast.Attribute) and node.attr == "alias" and isinstance(node.value, ast.Attribute)
                and node.value.attr == "connection" and isinstance(node.value.value, ast.Name)
                and node.value.value.id == editor):
            allowed_editor_uses += 1
        if isinstance(node, ast.Call):
            name = call_name(node)
            if isinstance(node.func, ast.Name) and name in functions:
                if not data_only(functions[name], functions, depth + 1, seen | {func.name}, known):
                    return False
            elif name not in DATA_CALLS:
                return False
    return editor_uses == allowed_editor_uses
