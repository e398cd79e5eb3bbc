"""Alembic revisions: what `upgrade()` does, following calls into the module's own functions.

Only `upgrade()` is what a deploy applies. A call into code that is not in the file, or that the
reader does not know, is "contract: cannot tell": what cannot be seen is never called expand."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from checks.migrations.alembic_columns import add_column, alter_column
from checks.migrations.operation import Operation, cannot_tell, contract, expand
from checks.migrations.py_ast import DATA_CALLS, arg, call_name, const, run_sql

MAX_FOLLOW = 8  # how deep calls into the module's own functions are followed
MAX_CALLS = 500  # how many calls into them are followed in all (helpers calling helpers fan out)
_PY_BUILTINS = {"print", "range", "len", "list", "dict", "set", "tuple", "sorted", "enumerate", "zip", "str",
                "int", "isinstance", "getattr", "hasattr", "min", "max", "any", "all", "format", "text"}
_RECEIVER_MODULES = {"sa", "sqlalchemy", "postgresql", "mysql", "sqlite", "log", "logger", "logging", "context",
                     "os", "datetime", "uuid", "json", "re", "time", "warnings", "np"}
# SQLAlchemy calls that run DDL themselves (`sa.Table(...).drop(bind)`), whatever they are called on.
_DDL_METHODS = {"drop", "create", "drop_all", "create_all", "create_index", "drop_index"}
_DATA_ONLY_OPS = {"bulk_insert": "inserts rows (data only, no schema change)"}
_IGNORED_OPS = {"get_bind", "get_context", "f", "inline_literal", "implementation_for", "invoke",
                "batch_alter_table", "autocommit_block", "run_async"}
_SIMPLE: dict[str, tuple[str, str]] = {  # name: (rule, what); "" rule = expand
    "drop_table": ("ban-drop-table", "drops table {0}"),
    "drop_column": ("ban-drop-column", "drops column {0}.{1}"),
    "rename_table": ("renaming-table", "renames table {0} to {1}"),
    "drop_constraint": ("", "drops constraint {0}"),
    "create_table_comment": ("", "comments on table {0}"),
    "drop_table_comment": ("", "drops the comment on table {0}"),
    "create_exclude_constraint": ("disallowed-unique-constraint", "adds exclusion constraint {0}"),
}
# name: (position of the table, rule, what) for constraints, which a new table takes freely.
_CONSTRAINTS = {
    "create_foreign_key": (1, "adding-foreign-key-constraint", "adds foreign key {0} on {1}, which checks every "
                                                               "row under lock"),
    "create_unique_constraint": (1, "disallowed-unique-constraint", "adds unique constraint {0} on {1}, which "
                                                                    "builds a blocking index"),
    "create_check_constraint": (1, "constraint-missing-not-valid", "adds check constraint {0} on {1}, which "
                                                                   "checks every row under lock"),
    "create_primary_key": (1, "disallowed-unique-constraint", "adds primary key {0} on {1}, which builds a "
                                                              "blocking index"),
}


@dataclass
class _Scope:
    functions: dict[str, ast.FunctionDef]
    created: set[str] = field(default_factory=set)
    ops: list[Operation] = field(default_factory=list)
    followed: int = 0


def alembic_operations(functions: dict[str, ast.FunctionDef], entry: list[str]) -> list[Operation]:
    """What the entry points (`upgrade`, or `schema_upgrades` and `data_upgrades`) do."""
    scope = _Scope(functions)
    for name in entry:
        _function(scope, functions[name], {}, ())
    return scope.ops


def _function(scope: _Scope, func: ast.FunctionDef, batches: dict[str, str], stack: tuple[str, ...]) -> None:
    if func.name in stack:
        scope.ops.append(cannot_tell(f"{func.name}() calls itself; what it does cannot be followed"))
        return
    if len(stack) >= MAX_FOLLOW:
        scope.ops.append(cannot_tell(f"calls nest more than {MAX_FOLLOW} deep at {func.name}()"))
        return
    scope.followed += 1
    if scope.followed > MAX_CALLS:
        if scope.followed == MAX_CALLS + 1:
            scope.ops.append(cannot_tell(f"upgrade makes more than {MAX_CALLS} calls into helpers; the rest not read"))
        return
    _body(scope, func.body, dict(batches), (*stack, func.name))


def _body(scope: _Scope, body: list[ast.stmt], batches: dict[str, str], stack: tuple[str, ...]) -> None:
    for stmt in body:
        _visit(scope, stmt, batches, stack)


def _visit(scope: _Scope, node: ast.AST, batches: dict[str, str], stack: tuple[str, ...],
           building: bool = False) -> None:
    """Every call in source order, wherever it sits (a condition, an argument, a comprehension):
    an operation hidden in `print(op.drop_column(...))` is still an operation. Inside the arguments
    of an operation or a SQLAlchemy constructor (`building`), other calls are values (a custom
    column type, a Python-side default) and are not flagged."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        scope.ops.append(cannot_tell(f"defines {node.name} inside a migration function"))
        return
    if isinstance(node, (ast.With, ast.AsyncWith)):
        inner = dict(batches)
        for item in node.items:
            call, alias = item.context_expr, item.optional_vars
            if isinstance(call, ast.Call) and call_name(call) == "batch_alter_table" and isinstance(alias, ast.Name):
                inner[alias.id] = str(_value(arg(call, 0, "table_name"), "?"))
            else:
                _visit(scope, call, batches, stack)
        for stmt in node.body:
            _visit(scope, stmt, inner, stack)
        return
    if isinstance(node, ast.Call):
        if _call(scope, node, batches, stack, building):
            return
        owner = node.func.value if isinstance(node.func, ast.Attribute) else None
        building = building or _receiver(node) in (_RECEIVER_MODULES | {"op"}) or (
            isinstance(owner, ast.Name) and owner.id in batches)
    for child in ast.iter_child_nodes(node):
        _visit(scope, child, batches, stack, building)


def _receiver(call: ast.Call) -> str | None:
    """`op` for `op.add_column(...)`, `sa` for `sa.Column(...)`; None for a plain `name(...)`."""
    func = call.func
    while isinstance(func, ast.Attribute):
        func = func.value
        if isinstance(func, ast.Call):
            func = func.func
    return func.id if isinstance(func, ast.Name) and call.func is not func else None


def _call(scope: _Scope, call: ast.Call, batches: dict[str, str], stack: tuple[str, ...], building: bool) -> bool:
    """Classify one call; True when its arguments were read with it (not to be visited again)."""
    name = call_name(call)
    if isinstance(call.func, ast.Name):
        if name in scope.functions:
            _function(scope, scope.functions[name], batches, stack)
        elif name not in _PY_BUILTINS and not building:
            scope.ops.append(cannot_tell(f"upgrade calls {name}(), which is not defined in this file"))
        return False
    owner = call.func.value if isinstance(call.func, ast.Attribute) else None
    if _receiver(call) == "op" and name in _IGNORED_OPS:
        return False  # `op.get_context().autocommit_block()`: a context, no schema change
    if isinstance(owner, ast.Name) and owner.id == "op":
        scope.ops.extend(_op(scope, name, call, None))
    elif isinstance(owner, ast.Name) and owner.id in batches:
        scope.ops.extend(_op(scope, name, call, batches[owner.id]))
    elif name in _DDL_METHODS:
        scope.ops.append(cannot_tell(f"upgrade calls {ast.unparse(call.func)[:60]}(), which changes the schema "
                                     "outside Alembic's operations"))
    elif name in ("execute", "exec_driver_sql"):
        ops = _execute(call)
        scope.ops.extend(ops)
        return ops[0].kind == "expand" if len(ops) == 1 else False
    elif not (_receiver(call) in _RECEIVER_MODULES or name in DATA_CALLS or building):
        scope.ops.append(cannot_tell(f"upgrade calls {ast.unparse(call.func)[:60]}(), which cannot be read"))
    return False


def _execute(call: ast.Call) -> list[Operation]:
    """`conn.execute(...)`: SQL text is read; a SQLAlchemy update/insert/delete only changes rows."""
    statement = arg(call, 0, "statement")
    if isinstance(statement, ast.Call) and call_name(statement) != "text":
        verbs = {call_name(n) for n in ast.walk(statement) if isinstance(n, ast.Call)}
        # A SQLAlchemy Core statement: rows only, unless it holds raw text, DDL or an operation.
        if (verbs & {"update", "insert", "delete", "select"} and not verbs & {"text", "DDL", "execute"}
                and not any(isinstance(n, ast.Name) and n.id == "op" for n in ast.walk(statement))):
            return [expand("changes rows through SQLAlchemy (data only, no schema change)", subject=("data", ""))]
    return run_sql(statement, "execute")


def _op(scope: _Scope, name: str, call: ast.Call, batch_table: str | None) -> list[Operation]:
    shift = 0 if batch_table is None else -1  # in a batch the table is implied

    def at(position: int, keyword: str, default: Any = "?") -> Any:
        if batch_table is not None and position == 0:
            return batch_table
        return _value(arg(call, position + shift, keyword), default)

    if name in _IGNORED_OPS:
        return []
    if name == "create_table":
        table = at(0, "table_name")
        scope.created.add(str(table))
        return [expand(f"creates table {table}")]
    if name == "add_column":
        table = at(0, "table_name")
        return [add_column(call, str(table), shift, str(table) in scope.created)]
    if name == "alter_column":
        table = at(0, "table_name")
        return [alter_column(call, f"{table}.{at(1, 'column_name')}", str(table) in scope.created)]
    if name in ("create_index", "drop_index"):
        return [_index(scope, name, call, batch_table, shift)]
    if name == "execute":
        return run_sql(arg(call, 0, "sqltext"), "op.execute")
    if name in _DATA_ONLY_OPS:
        return [expand(_DATA_ONLY_OPS[name], subject=("data", ""))]
    if name in _CONSTRAINTS:
        position, rule, what = _CONSTRAINTS[name]
        constraint = const(arg(call, 0, "constraint_name"), "?")
        table = batch_table if batch_table is not None else const(arg(call, position, "source_table"
                                                                      if name == "create_foreign_key"
                                                                      else "table_name"), "?")
        if table in scope.created:
            return [expand(f"adds constraint {constraint} to the new table {table}")]
        if const(arg(call, -1, "postgresql_not_valid"), False) is True:
            condition = const(arg(call, 2, "condition"), "") if name == "create_check_constraint" else ""
            column = re.fullmatch(r'\s*"?(\w+)"?\s+IS\s+NOT\s+NULL\s*', str(condition), re.IGNORECASE)
            key = f"{constraint}|{table}.{column.group(1)}" if column else f"{constraint}|"
            return [expand(f"adds constraint {constraint} to {table} NOT VALID", subject=("not-valid", key.lower()))]
        return [contract(what.format(constraint, table), rule)]
    if name in _SIMPLE:
        rule, template = _SIMPLE[name]
        if batch_table is not None and name == "drop_column":
            first, second = batch_table, const(arg(call, 0, "column_name"), "?")
        else:
            first, second = _value(arg(call, 0, ""), "?"), _value(arg(call, 1, ""), "?")
        what = template.format(first, second)
        return [contract(what, rule) if rule else expand(what)]
    return [cannot_tell(f"op.{name} is not recognised")]


def _value(node: ast.AST | None, default: Any) -> Any:
    """A literal's value; a variable (a loop's table) as `<name>`, so the reason still reads."""
    if isinstance(node, ast.Name):
        return f"<{node.id}>"
    return const(node, default)


def _index(scope: _Scope, name: str, call: ast.Call, batch_table: str | None, shift: int) -> Operation:
    named = arg(call, 0, "index_name")
    if isinstance(named, ast.Call) and call_name(named) == "f" and named.args:  # op.f("ix_...")
        named = named.args[0]
    index = _value(named, "?")
    table = batch_table if batch_table is not None else const(arg(call, 1, "table_name"), "?")
    concurrently = const(arg(call, -1, "postgresql_concurrently"), False) is True
    if name == "drop_index":
        if concurrently:
            return expand(f"drops index {index} concurrently")
        return contract(f"drops index {index} without postgresql_concurrently=True, which locks its table",
                        "require-concurrent-index-deletion")
    if concurrently:
        return expand(f"creates index {index} on {table} concurrently")
    if table in scope.created:
        return expand(f"creates index {index} on the new table {table}")
    return contract(f"creates index {index} on {table} without postgresql_concurrently=True, "
                    "which blocks writes while it builds", "require-concurrent-index-creation")
