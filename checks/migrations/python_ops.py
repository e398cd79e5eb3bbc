"""Python migrations: Django and Alembic, read with ast."""

from __future__ import annotations

import ast
from typing import Any

from checks.migrations.operation import CONTRACT, EXPAND, Operation
from checks.migrations.sql import sql_operations


def python_operations(text: str) -> list[Operation]:
    """An Alembic revision (it has `upgrade()`) or a Django migration (`operations = [...]`)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return [Operation(CONTRACT, f"Python could not be parsed (line {exc.lineno}: {exc.msg}); treated as contract")]
    upgrade = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
    if upgrade is not None:
        return _alembic(upgrade)
    operations = _django_operations(tree)
    if operations is not None:
        return [op for call in operations for op in _django(call)]
    return [Operation(CONTRACT, "neither a Django migration (no `operations`) nor an Alembic one (no `upgrade()`); "
                                "treated as contract")]


def _const(node: ast.AST | None, default: Any = None) -> Any:
    if node is None:
        return default
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return default


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return "?"


def _arg(call: ast.Call, position: int, keyword: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


def _has_kw(call: ast.Call, keyword: str) -> bool:
    return any(kw.arg == keyword for kw in call.keywords)


def _django_operations(tree: ast.Module) -> list[ast.AST] | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            for stmt in node.body:
                value = _operations_value(stmt)
                if value is not None:
                    return list(value.elts) if isinstance(value, (ast.List, ast.Tuple)) else [value]
            return []
    return None


def _operations_value(stmt: ast.stmt) -> ast.expr | None:
    """What `operations = [...]` (or `operations: list = [...]`) assigns; None for any other statement."""
    targets: list[ast.expr]
    if isinstance(stmt, ast.Assign):
        targets, value = stmt.targets, stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets, value = [stmt.target], stmt.value
    else:
        return None
    return value if any(isinstance(t, ast.Name) and t.id == "operations" for t in targets) else None


_DJANGO_EXPAND = {
    "CreateModel": "creates model {model}",
    "AddIndexConcurrently": "adds index to {model} concurrently",
    "RemoveIndexConcurrently": "removes index from {model} concurrently",
    "RemoveConstraint": "removes a constraint from {model}",
    "AlterModelOptions": "changes options of {model} (no schema change)",
    "AlterModelManagers": "changes managers of {model} (no schema change)",
    "CreateExtension": "creates a database extension",
    "HStoreExtension": "creates the hstore extension",
    "TrigramExtension": "creates the pg_trgm extension",
    "UnaccentExtension": "creates the unaccent extension",
    "CITextExtension": "creates the citext extension",
    "BtreeGinExtension": "creates the btree_gin extension",
    "BtreeGistExtension": "creates the btree_gist extension",
    "CryptoExtension": "creates the pgcrypto extension",
    "ValidateConstraint": "validates a constraint on {model}",
    "AddConstraintNotValid": "adds a constraint to {model} NOT VALID",
}
_DJANGO_CONTRACT = {
    "DeleteModel": "deletes model {model}",
    "RemoveField": "removes field {model}.{field}",
    "RenameField": "renames field {model}.{field} to {new}",
    "RenameModel": "renames model {model} to {new}",
    "AlterField": "alters field {model}.{field} (type or constraint change)",
    "AddIndex": "adds an index to {model} without concurrently, which blocks writes while it builds",
    "RemoveIndex": "removes an index from {model} without concurrently, which locks the table",
    "AddConstraint": "adds a constraint to {model}, which checks every row under lock",
    "AlterUniqueTogether": "changes unique_together of {model} (builds a blocking index)",
    "AlterIndexTogether": "changes index_together of {model} (builds a blocking index)",
    "AlterModelTable": "renames the table of {model}",
    "AlterOrderWithRespectTo": "changes order_with_respect_to of {model}",
    "RenameIndex": "renames an index of {model}",
    "RunPython": "runs Python code that cannot be inspected",
}


# Operations whose first argument is the model itself (`name=`), not `model_name=`.
_DJANGO_MODEL_OPS = {"CreateModel", "DeleteModel", "AlterModelTable", "AlterModelOptions", "AlterModelManagers",
                     "AlterUniqueTogether", "AlterIndexTogether", "AlterOrderWithRespectTo"}


def _django(node: ast.AST) -> list[Operation]:
    if not isinstance(node, ast.Call):
        return [Operation(CONTRACT, f"operation `{ast.unparse(node)[:60]}` cannot be read; treated as contract")]
    op = _call_name(node)
    model_keyword = "name" if op in _DJANGO_MODEL_OPS else "old_name" if op == "RenameModel" else "model_name"
    model = _const(_arg(node, 0, model_keyword), "?")
    field = _const(_arg(node, 1, "old_name" if op == "RenameField" else "name"), "?")
    if op == "AddField":
        return [_django_add_field(node, f"{model}.{field}")]
    if op == "RunSQL":
        return _run_sql(_arg(node, 0, "sql"), "RunSQL")
    if op == "SeparateDatabaseAndState":
        database = _arg(node, 0, "database_operations")
        elements = database.elts if isinstance(database, (ast.List, ast.Tuple)) else []
        return [o for element in elements for o in _django(element)]
    new = _const(_arg(node, 2 if op == "RenameField" else 1, "new_name"), "?")
    names = {"model": model, "field": field, "new": new}
    if op in _DJANGO_EXPAND:
        return [Operation(EXPAND, _DJANGO_EXPAND[op].format(**names))]
    if op in _DJANGO_CONTRACT:
        return [Operation(CONTRACT, _DJANGO_CONTRACT[op].format(**names))]
    return [Operation(CONTRACT, f"unknown operation {op}; treated as contract")]


def _django_add_field(node: ast.Call, name: str) -> Operation:
    field = _arg(node, 2, "field")
    if isinstance(field, ast.Call):
        if _call_name(field) == "ManyToManyField":
            return Operation(EXPAND, f"adds many-to-many field {name} (a new join table)")
        if _const(_arg(field, 99, "null"), False) is True:
            return Operation(EXPAND, f"adds nullable field {name}")
        if _has_kw(field, "default") or _has_kw(field, "db_default"):
            return Operation(EXPAND, f"adds field {name} with a default")
    return Operation(CONTRACT, f"adds field {name} NOT NULL without a default, "
                               "which the running release does not write")


def _run_sql(node: ast.AST | None, where: str) -> list[Operation]:
    """SQL given as a string, a list of strings, or (sql, params) pairs; else it cannot be read."""
    value = _sql_text(node)
    if value is None:
        return [Operation(CONTRACT, f"{where} with SQL that is not a literal; treated as contract")]
    return sql_operations(value)


def _sql_text(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Call) and _call_name(node) == "text" and node.args:
        node = node.args[0]  # sqlalchemy.text("...")
    value = _const(node)
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


# Alembic: only upgrade() is what a deploy applies.
_ALEMBIC_SIMPLE = {
    "drop_table": (CONTRACT, "drops table {0}"),
    "drop_column": (CONTRACT, "drops column {0}.{1}"),
    "rename_table": (CONTRACT, "renames table {0} to {1}"),
    "drop_constraint": (EXPAND, "drops constraint {0}"),
    "bulk_insert": (EXPAND, "inserts rows (data only, no schema change)"),
    "create_foreign_key": (CONTRACT, "adds foreign key {0}, which checks every row under lock"),
    "create_unique_constraint": (CONTRACT, "adds unique constraint {0}, which builds a blocking index"),
    "create_check_constraint": (CONTRACT, "adds check constraint {0}, which checks every row under lock"),
    "create_primary_key": (CONTRACT, "adds primary key {0}, which builds a blocking index"),
    "create_table_comment": (EXPAND, "comments on table {0}"),
}
_ALEMBIC_IGNORED = {"get_bind", "get_context", "f", "inline_literal", "implementation_for", "invoke"}


def _alembic(upgrade: ast.FunctionDef) -> list[Operation]:
    ops: list[Operation] = []
    created: set[str] = set()
    batches: dict[str, str] = {}  # `with op.batch_alter_table("t") as batch_op` -> {"batch_op": "t"}
    for node in ast.walk(upgrade):
        if isinstance(node, ast.With):
            for item in node.items:
                call, alias = item.context_expr, item.optional_vars
                if (isinstance(call, ast.Call) and _call_name(call) == "batch_alter_table"
                        and isinstance(alias, ast.Name)):
                    batches[alias.id] = str(_const(_arg(call, 0, "table_name"), "?"))
    for node in ast.walk(upgrade):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)):
            continue
        owner, name = node.func.value.id, node.func.attr
        if owner == "op":
            ops.extend(_alembic_op(name, node, None, created))
        elif owner in batches:
            ops.extend(_alembic_op(name, node, batches[owner], created))
    return ops


def _alembic_op(name: str, call: ast.Call, batch_table: str | None, created: set[str]) -> list[Operation]:
    # In a batch the table is implied, so every positional argument shifts left by one.
    shift = 0 if batch_table is None else -1

    def arg(position: int, keyword: str, default: Any = "?") -> Any:
        if batch_table is not None and position == 0 and keyword == "table_name":
            return batch_table
        return _const(_arg(call, position + shift, keyword), default)

    if name in ("batch_alter_table",) or name in _ALEMBIC_IGNORED:
        return []
    if name == "create_table":
        table = arg(0, "table_name")
        created.add(table)
        return [Operation(EXPAND, f"creates table {table}")]
    if name == "add_column":
        table = arg(0, "table_name")
        column = _arg(call, 1 + shift, "column")
        col_name = _const(_arg(column, 0, "name"), "?") if isinstance(column, ast.Call) else "?"
        nullable = _const(_arg(column, 99, "nullable"), True) if isinstance(column, ast.Call) else True
        primary = _const(_arg(column, 99, "primary_key"), False) if isinstance(column, ast.Call) else False
        has_default = isinstance(column, ast.Call) and _has_kw(column, "server_default")
        if (nullable is False or primary) and not has_default and table not in created:
            return [Operation(CONTRACT, f"adds column {table}.{col_name} NOT NULL without a server default, "
                                        "which the running release does not write")]
        how = " with a server default" if has_default else " (nullable)"
        return [Operation(EXPAND, f"adds column {table}.{col_name}{how}")]
    if name == "alter_column":
        table, column = arg(0, "table_name"), arg(1, "column_name")
        return [_alembic_alter_column(call, f"{table}.{column}")]
    if name == "create_index":
        index, table = arg(0, "index_name"), arg(1, "table_name")
        if batch_table is not None:
            index, table = _const(_arg(call, 0, "index_name"), "?"), batch_table
        if _const(_arg(call, 99, "postgresql_concurrently"), False) is True:
            return [Operation(EXPAND, f"creates index {index} on {table} concurrently")]
        if table in created:
            return [Operation(EXPAND, f"creates index {index} on the new table {table}")]
        return [Operation(CONTRACT, f"creates index {index} on {table} without postgresql_concurrently=True, "
                                    "which blocks writes while it builds")]
    if name == "drop_index":
        index = _const(_arg(call, 0, "index_name"), "?")
        if _const(_arg(call, 99, "postgresql_concurrently"), False) is True:
            return [Operation(EXPAND, f"drops index {index} concurrently")]
        return [Operation(CONTRACT, f"drops index {index} without postgresql_concurrently=True, "
                                    "which locks its table")]
    if name == "execute":
        return _run_sql(_arg(call, 0, "sqltext"), "op.execute")
    if name in _ALEMBIC_SIMPLE:
        kind, template = _ALEMBIC_SIMPLE[name]
        first = batch_table if batch_table is not None and name == "drop_column" else _const(_arg(call, 0, ""), "?")
        second = _const(_arg(call, 0 if batch_table is not None and name == "drop_column" else 1, ""), "?")
        return [Operation(kind, template.format(first, second))]
    return [Operation(CONTRACT, f"op.{name} is not recognised; treated as contract")]


# alter_column's keywords that only describe the column as it is, and those that loosen it.
_CONTEXT_ONLY = {"existing_type", "existing_nullable", "existing_server_default", "schema"}
_LOOSENING = {"nullable", "server_default", "comment", *_CONTEXT_ONLY}


def _alembic_alter_column(call: ast.Call, column: str) -> Operation:
    changes = {kw.arg for kw in call.keywords if kw.arg is not None}
    spread = len(changes) < len(call.keywords)  # a `**mapping`, whose keys cannot be read
    if "new_column_name" in changes:
        return Operation(CONTRACT, f"renames column {column} to {_const(_arg(call, 99, 'new_column_name'), '?')}")
    if "type_" in changes:
        return Operation(CONTRACT, f"changes the type of {column}")
    if "nullable" in changes and _const(_arg(call, 99, "nullable")) is False:
        return Operation(CONTRACT, f"sets {column} NOT NULL")
    if changes and not spread and changes <= _LOOSENING and _const(_arg(call, 99, "server_default"), "x") is not None:
        return Operation(EXPAND, f"alters {column} compatibly ({', '.join(sorted(changes - _CONTEXT_ONLY))})")
    return Operation(CONTRACT, f"alters column {column}")
