"""SQL (Flyway files, Django RunSQL, Alembic op.execute, Rails execute), parsed with sqlglot."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from checks.migrations.operation import CONTRACT, EXPAND, Operation


def sql_operations(sql: str, dialect: str = "postgres") -> list[Operation]:
    """Each statement's effect on the schema, parsed with sqlglot."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0][:200]
        return [Operation(CONTRACT, f"SQL could not be parsed ({first}); treated as contract so a person reads it")]
    created: set[str] = set()
    ops: list[Operation] = []
    for statement in statements:
        ops.extend(_statement(statement, created, dialect))
    return ops


def _name(node: exp.Expression | None) -> str:
    if node is None:
        return "?"
    if isinstance(node, exp.Schema):
        node = node.this
    if isinstance(node, exp.Table):
        return ".".join(p.name for p in node.parts)
    return node.name or node.sql()


def _statement(stmt: exp.Expr, created: set[str], dialect: str) -> list[Operation]:
    if isinstance(stmt, (exp.Transaction, exp.Commit, exp.Set, exp.Comment, exp.Grant)):
        return []
    if isinstance(stmt, exp.Create):
        return [_create(stmt, created, dialect)]
    if isinstance(stmt, exp.Drop):
        return [_drop(stmt, dialect)]
    if isinstance(stmt, exp.Alter):
        table = _name(stmt.this)
        return [_alter_action(table, action, stmt, created) for action in stmt.args.get("actions") or []]
    if isinstance(stmt, exp.TruncateTable):
        return [Operation(CONTRACT, "truncates " + ", ".join(_name(t) for t in stmt.expressions))]
    if isinstance(stmt, (exp.Insert, exp.Update, exp.Delete)):
        table = _name(stmt.this if not isinstance(stmt.this, exp.Schema) else stmt.this.this)
        return [Operation(EXPAND, f"changes rows of {table} (data only, no schema change)")]
    if isinstance(stmt, exp.Command):
        return [_command(stmt)]
    if isinstance(stmt, (exp.Select, exp.Query)):
        return []
    return [Operation(CONTRACT, f"statement not recognised ({stmt.sql(dialect)[:80]}); treated as contract")]


def _create(stmt: exp.Create, created: set[str], dialect: str) -> Operation:
    kind = (stmt.args.get("kind") or "").upper()
    if kind == "INDEX":
        index = stmt.this
        table = _name(index.args.get("table")) if isinstance(index, exp.Index) else "?"
        name = index.name if isinstance(index, exp.Index) else "?"
        if stmt.args.get("concurrently"):
            return Operation(EXPAND, f"creates index {name} on {table} concurrently")
        if table in created:
            return Operation(EXPAND, f"creates index {name} on the new table {table}")
        if dialect == "postgres":
            return Operation(CONTRACT, f"creates index {name} on {table} without CONCURRENTLY, "
                                       f"which blocks writes to {table} while it builds")
        return Operation(EXPAND, f"creates index {name} on {table}")
    name = _name(stmt.this)
    if kind == "TABLE":
        created.add(name)
        return Operation(EXPAND, f"creates table {name}")
    if stmt.args.get("replace"):
        return Operation(CONTRACT, f"replaces {kind.lower()} {name}, which the running release may rely on")
    return Operation(EXPAND, f"creates {kind.lower()} {name}")


def _drop(stmt: exp.Drop, dialect: str) -> Operation:
    kind = (stmt.args.get("kind") or "").upper()
    names = ", ".join(_name(t) for t in stmt.args.get("tables") or []) or _name(stmt.this)
    if kind == "INDEX":
        if stmt.args.get("concurrently") or dialect != "postgres":
            how = " concurrently" if stmt.args.get("concurrently") else ""
            return Operation(EXPAND, f"drops index {names}{how}")
        return Operation(CONTRACT, f"drops index {names} without CONCURRENTLY, which locks its table")
    return Operation(CONTRACT, f"drops {kind.lower() or 'object'} {names}")


def _not_null_without_default(column: exp.ColumnDef) -> bool:
    kinds = [c.args.get("kind") for c in column.args.get("constraints") or []]
    not_null = any(isinstance(k, (exp.NotNullColumnConstraint, exp.PrimaryKeyColumnConstraint))
                   and not k.args.get("allow_null") for k in kinds)
    has_default = any(isinstance(k, exp.DefaultColumnConstraint) for k in kinds)
    serial = column.args.get("kind") is not None and column.args["kind"].this in (
        exp.DataType.Type.SERIAL, exp.DataType.Type.BIGSERIAL, exp.DataType.Type.SMALLSERIAL)
    return not_null and not has_default and not serial


def _alter_action(table: str, action: exp.Expression, stmt: exp.Alter, created: set[str]) -> Operation:
    if isinstance(action, exp.ColumnDef):
        column = f"{table}.{action.name}"
        if _not_null_without_default(action) and table not in created:
            return Operation(CONTRACT, f"adds column {column} NOT NULL without a default, "
                                       "which the running release does not write")
        return Operation(EXPAND, f"adds column {column}" + ("" if _nullable(action) else " with a default"))
    if isinstance(action, exp.Drop):
        kind = (action.args.get("kind") or "").upper()
        names = ", ".join(_name(t) for t in action.args.get("tables") or [])
        if kind == "CONSTRAINT":
            return Operation(EXPAND, f"drops constraint {names} on {table}")
        return Operation(CONTRACT, f"drops {kind.lower() or 'column'} {table}.{names}")
    if isinstance(action, exp.RenameColumn):
        return Operation(CONTRACT, f"renames column {table}.{action.this.name} to {action.args['to'].name}")
    if isinstance(action, exp.AlterRename):
        return Operation(CONTRACT, f"renames table {table} to {_name(action.this)}")
    if isinstance(action, exp.AlterColumn):
        return _alter_column(f"{table}.{action.name}", action)
    if isinstance(action, exp.AddConstraint):
        if stmt.args.get("not_valid"):
            return Operation(EXPAND, f"adds a constraint to {table} NOT VALID")
        return Operation(CONTRACT, f"adds a constraint to {table} without NOT VALID, which checks every row under lock")
    return Operation(CONTRACT, f"alters {table} ({action.sql()[:60]}); not recognised, treated as contract")


def _nullable(column: exp.ColumnDef) -> bool:
    kinds = [c.args.get("kind") for c in column.args.get("constraints") or []]
    return not any(isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null") for k in kinds)


def _alter_column(column: str, action: exp.AlterColumn) -> Operation:
    if action.args.get("dtype") is not None:
        return Operation(CONTRACT, f"changes the type of {column} to {action.args['dtype'].sql()}")
    if action.args.get("allow_null") is False:
        return Operation(CONTRACT, f"sets {column} NOT NULL")
    if action.args.get("allow_null") is True:
        return Operation(EXPAND, f"lets {column} be NULL")
    if action.args.get("default") is not None:
        return Operation(EXPAND, f"sets a default on {column}")
    if action.args.get("drop"):
        return Operation(CONTRACT, f"drops the default of {column}, which inserts from the running release may need")
    return Operation(CONTRACT, f"alters {column} ({action.sql()[:60]}); treated as contract")


# Statements sqlglot keeps as raw commands that leave the running release working.
_HARMLESS_COMMANDS = (
    re.compile(r"^CREATE\s+EXTENSION\b", re.IGNORECASE),
    re.compile(r"^ALTER\s+TABLE\s+\S+\s+VALIDATE\s+CONSTRAINT\b", re.IGNORECASE),
    re.compile(r"^(ANALYZE|COMMENT|SET|RESET|VACUUM)\b", re.IGNORECASE),
)


def _command(stmt: exp.Command) -> Operation:
    expression = stmt.expression
    rest = expression.sql() if isinstance(expression, exp.Expression) else expression or ""
    text = f"{stmt.this} {rest}".strip()
    text = " ".join(text.split())
    if any(p.match(text) for p in _HARMLESS_COMMANDS):
        return Operation(EXPAND, f"runs {text[:60]}")
    return Operation(CONTRACT, f"statement not understood ({text[:60]}); treated as contract")
