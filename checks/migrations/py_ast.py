"""ast helpers shared by the Django and Alembic readers: literals, call names and arguments,
SQL given as literals, and what a data-only function looks like."""

from __future__ import annotations

import ast
from typing import Any

from checks.migrations.operation import Operation, cannot_tell
from checks.migrations.sql import sql_operations


def module_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """The functions defined at the top of the module, by name: what calls may be followed into."""
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def const(node: ast.AST | None, default: Any = None) -> Any:
    if node is None:
        return default
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return default


def call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return "?"


def arg(call: ast.Call, position: int, keyword: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if 0 <= position < len(call.args) else None


def has_kw(call: ast.Call, keyword: str) -> bool:
    return any(kw.arg == keyword for kw in call.keywords)


def run_sql(node: ast.AST | None, where: str) -> list[Operation]:
    """SQL given as a string, a list of strings, or (sql, params) pairs; else it cannot be read."""
    value = sql_text(node)
    if value is None:
        return [cannot_tell(f"{where} with SQL that is not a literal")]
    return sql_operations(value)


def sql_text(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Call) and call_name(node) == "text" and node.args:
        node = node.args[0]  # sqlalchemy.text("...")
    value = const(node)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        parts = [_statement_of(item) for item in value]
        statements = [p for p in parts if p is not None]
        if len(statements) == len(parts):
            return ";\n".join(statements)
    return None


def _statement_of(item: Any) -> str | None:
    """One item of a RunSQL list: a statement, or a (statement, params) pair."""
    if isinstance(item, str):
        return item
    if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
        return item[0]
    return None


# Calls that change rows, never the schema: what a data migration or a batched backfill does.
DATA_CALLS = {
    "get_model", "using", "filter", "exclude", "all", "only", "defer", "values", "values_list", "order_by",
    "iterator", "update", "bulk_update", "bulk_create", "create", "get_or_create", "update_or_create", "save",
    "delete", "first", "last", "exists", "count", "in_bulk", "select_related", "prefetch_related", "annotate",
    "F", "Q", "Value", "Case", "When", "Coalesce", "Lower", "Upper", "Now", "Concat", "Cast", "Subquery",
    "OuterRef", "Exists", "range", "len", "min", "max", "list", "set", "dict", "tuple", "sorted", "enumerate",
    "zip", "print", "sleep", "str", "int", "bool", "append", "extend", "add", "items", "keys", "get", "format",
    "lower", "upper", "strip", "split", "join", "replace", "isoformat", "aggregate", "distinct", "none",
    "select", "insert", "where", "execution_options", "scalar", "scalars", "fetchall", "fetchone", "commit",
    "flush", "info", "debug", "warning", "table", "column", "sum", "any", "isinstance", "getattr", "now",
    "atomic", "select_for_update", "Count", "Max", "Min", "Sum", "Avg", "timedelta", "datetime", "date", "uuid4",
    "loads", "dumps", "strftime", "startswith", "endswith", "pop", "setdefault", "Func", "Length",
    "Trim", "Replace", "Substr", "JSONObject", "ExpressionWrapper", "TruncDate", "bulk_update_or_create",
}


def does_nothing(func: ast.FunctionDef | ast.Lambda) -> bool:
    """A function whose body is only a docstring, `pass`, `...` or a bare `return`."""
    if isinstance(func, ast.Lambda):
        return isinstance(func.body, ast.Constant)
    for stmt in func.body:
        bare_return = isinstance(stmt, ast.Return) and (stmt.value is None or const(stmt.value, 0) is None)
        if isinstance(stmt, ast.Pass) or bare_return:
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        return False
    return True
