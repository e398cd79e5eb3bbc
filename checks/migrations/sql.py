"""SQL (Flyway files, Django RunSQL, Alembic op.execute, Rails execute), statement by statement:
split first (comments dropped), then known words (sql_text), then sqlglot."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from checks.migrations.operation import Operation, cannot_tell, contract, expand, generated_column
from checks.migrations.sql_text import UnreadableSql, command_operation, known_statement, split_statements


def sql_operations(sql: str, dialect: str = "postgres") -> list[Operation]:
    """Each statement's effect on the schema; a statement that cannot be read is contract."""
    created: set[str] = set()
    ops: list[Operation] = []
    parsed = 0
    try:
        texts = split_statements(sql)
    except UnreadableSql as exc:
        return [cannot_tell(f"SQL could not be split into statements: {exc}")]
    for text in texts:
        known = known_statement(text)
        if known is not None:
            ops.extend(known)
            continue
        parsed += 1
        if parsed > MAX_PARSED:
            ops.append(cannot_tell(f"more than {MAX_PARSED} schema statements in one migration; the rest not read"))
            break
        try:
            statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
        except (ParseError, TokenError) as exc:
            first = str(exc).splitlines()[0][:200]
            ops.append(cannot_tell(f"SQL could not be parsed ({first})"))
            continue
        for statement in statements:
            ops.extend(_statement(statement, created, dialect))
    return ops


# Statements handed to sqlglot per migration: parsing is the slow part (a few ms each).
MAX_PARSED = 1000


def _key(name: str) -> str:
    """A table's name as compared within one migration: unquoted, lower case, without its schema."""
    return name.replace('"', "").lower().rsplit(".", 1)[-1]


def _name(node: exp.Expression | None) -> str:
    if node is None:
        return "?"
    if isinstance(node, exp.Schema):
        node = node.this
    if isinstance(node, exp.Table):
        return ".".join(p.name for p in node.parts)
    return node.name or node.sql()


def _statement(stmt: exp.Expr, created: set[str], dialect: str) -> list[Operation]:
    if isinstance(stmt, (exp.Transaction, exp.Commit, exp.Rollback, exp.Set, exp.Comment, exp.Grant,
                         exp.Semicolon, exp.Select, exp.Query)):
        return []
    if isinstance(stmt, exp.Create):
        return [_create(stmt, created, dialect)]
    if isinstance(stmt, exp.Drop):
        return [_drop(stmt, dialect)]
    if isinstance(stmt, exp.Alter):
        table = _name(stmt.this)
        kind = (stmt.args.get("kind") or "TABLE").upper()
        if kind != "TABLE":
            return [_alter_other(kind, table, stmt)]
        return [_alter_action(table, action, stmt, created) for action in stmt.args.get("actions") or []]
    if isinstance(stmt, exp.TruncateTable):
        return [contract("truncates " + ", ".join(_name(t) for t in stmt.expressions), "ban-truncate")]
    if isinstance(stmt, (exp.Insert, exp.Update, exp.Delete)):
        table = _name(stmt.this if not isinstance(stmt.this, exp.Schema) else stmt.this.this)
        return [expand(f"changes rows of {table} (data only, no schema change)", subject=("data", ""))]
    if isinstance(stmt, exp.Command):
        expression = stmt.expression
        rest = expression.sql() if isinstance(expression, exp.Expression) else expression or ""
        return [command_operation(f"{stmt.this} {rest}")]
    return [cannot_tell(f"statement not recognised ({stmt.sql(dialect)[:80]})")]


def _create(stmt: exp.Create, created: set[str], dialect: str) -> Operation:
    kind = (stmt.args.get("kind") or "").upper()
    if kind == "INDEX":
        index = stmt.this
        table = _name(index.args.get("table")) if isinstance(index, exp.Index) else "?"
        name = index.name if isinstance(index, exp.Index) else "?"
        if stmt.args.get("concurrently"):
            return expand(f"creates index {name} on {table} concurrently")
        if _key(table) in created:
            return expand(f"creates index {name} on the new table {table}")
        if dialect == "postgres":
            return contract(f"creates index {name} on {table} without CONCURRENTLY, "
                            f"which blocks writes to {table} while it builds", "require-concurrent-index-creation")
        return expand(f"creates index {name} on {table}")
    name = _name(stmt.this)
    if kind == "TABLE":
        if stmt.args.get("replace"):
            return contract(f"replaces table {name}, dropping the one the running release uses", "ban-drop-table")
        created.add(_key(name))
        return expand(f"creates table {name}")
    if stmt.args.get("replace"):
        return expand(f"creates or replaces {kind.lower()} {name}")
    return expand(f"creates {kind.lower()} {name}")


def _drop(stmt: exp.Drop, dialect: str) -> Operation:
    kind = (stmt.args.get("kind") or "").upper()
    names = ", ".join(_name(t) for t in stmt.args.get("tables") or []) or _name(stmt.this)
    if kind == "INDEX":
        if stmt.args.get("concurrently") or dialect != "postgres":
            how = " concurrently" if stmt.args.get("concurrently") else ""
            return expand(f"drops index {names}{how}")
        return contract(f"drops index {names} without CONCURRENTLY, which locks its table",
                        "require-concurrent-index-deletion")
    rule = "ban-drop-table" if kind in ("TABLE", "VIEW", "") else "ban-drop-object"
    return contract(f"drops {kind.lower() or 'object'} {names}", rule)


def _alter_other(kind: str, name: str, stmt: exp.Alter) -> Operation:
    actions = stmt.args.get("actions") or []
    if kind == "INDEX" and actions and all(isinstance(a, exp.AlterRename) for a in actions):
        return expand(f"renames index {name} (no table or column changes)")
    if kind in ("SEQUENCE", "INDEX") and not any(isinstance(a, exp.Drop) for a in actions):
        return expand(f"alters {kind.lower()} {name}")
    if kind == "VIEW" and actions and all(isinstance(a, exp.AlterRename) for a in actions):
        return contract(f"renames view {name}", "renaming-table")
    return cannot_tell(f"alters {kind.lower()} {name} ({stmt.sql()[:60]})")


def _constraint_kinds(column: exp.ColumnDef) -> list[exp.Expression]:
    return [c.args.get("kind") for c in column.args.get("constraints") or []]


def _generated(column: exp.ColumnDef) -> tuple[bool, bool]:
    """(primary key, numbered by the database: serial or identity) for a column definition."""
    kinds = _constraint_kinds(column)
    primary = any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds)
    dtype = column.args.get("kind")
    serial = dtype is not None and dtype.this in (
        exp.DataType.Type.SERIAL, exp.DataType.Type.BIGSERIAL, exp.DataType.Type.SMALLSERIAL)
    identity = any(isinstance(k, (exp.GeneratedAsIdentityColumnConstraint, exp.AutoIncrementColumnConstraint))
                   for k in kinds)
    return primary, serial or identity


def _not_null_without_default(column: exp.ColumnDef) -> bool:
    kinds = _constraint_kinds(column)
    not_null = any(isinstance(k, (exp.NotNullColumnConstraint, exp.PrimaryKeyColumnConstraint))
                   and not k.args.get("allow_null") for k in kinds)
    return not_null and not any(isinstance(k, exp.DefaultColumnConstraint) for k in kinds)


def _add_column(table: str, action: exp.ColumnDef, created: set[str]) -> Operation:
    column = f"{table}.{action.name}"
    if _key(table) in created:
        return expand(f"adds column {column} to the new table {table}")
    primary, numbered = _generated(action)
    if (generated := generated_column(column, primary, numbered)) is not None:
        return generated
    if _not_null_without_default(action):
        return contract(f"adds column {column} NOT NULL without a default, which the running release does not write",
                        "adding-required-field")
    kinds = _constraint_kinds(action)
    if any(isinstance(k, exp.Reference) for k in kinds):
        return contract(f"adds column {column} with a foreign key, which checks {table} under a lock that blocks "
                        "writes to both tables", "adding-foreign-key-constraint")
    if any(isinstance(k, exp.UniqueColumnConstraint) for k in kinds):
        return contract(f"adds column {column} UNIQUE, which builds its index while blocking writes",
                        "disallowed-unique-constraint")
    if any(isinstance(k, exp.ComputedColumnConstraint) for k in kinds):
        return contract(f"adds stored generated column {column}, which rewrites {table} under an exclusive lock",
                        "adding-stored-generated-column")
    defaults = [k for k in kinds if isinstance(k, exp.DefaultColumnConstraint)]
    if any(volatile(k.this.sql("postgres") if k.this is not None else "") or isinstance(k.this, exp.Uuid)
           for k in defaults):
        return contract(f"adds column {column} with a volatile default, which rewrites {table} under an exclusive "
                        "lock", "adding-field-with-default")
    return expand(f"adds column {column}" + ("" if _nullable(action) else " with a default"),
                  subject=("add-column", column.lower()))


_VOLATILE = re.compile(r"\b(?:gen_random_uuid|uuid_generate_v[14]\w*|random|clock_timestamp|timeofday|nextval|"
                       r"txid_current|uuidv7)\s*\(", re.IGNORECASE)


def volatile(default_sql: str) -> bool:
    """A default PostgreSQL computes per row (so it rewrites the table), not once for all rows."""
    return _VOLATILE.search(default_sql) is not None


def _alter_action(table: str, action: exp.Expression, stmt: exp.Alter, created: set[str]) -> Operation:
    if isinstance(action, exp.ColumnDef):
        return _add_column(table, action, created)
    if isinstance(action, exp.Drop):
        kind = (action.args.get("kind") or "").upper()
        names = ", ".join(_name(t) for t in action.args.get("tables") or [])
        if kind == "CONSTRAINT":
            return expand(f"drops constraint {names} on {table}")
        return contract(f"drops {kind.lower() or 'column'} {table}.{names}", "ban-drop-column")
    if isinstance(action, exp.RenameColumn):
        return contract(f"renames column {table}.{action.this.name} to {action.args['to'].name}", "renaming-column")
    if isinstance(action, exp.AlterRename):
        return contract(f"renames table {table} to {_name(action.this)}", "renaming-table")
    if isinstance(action, exp.AlterColumn):
        return _alter_column(table, action, created)
    if isinstance(action, exp.AddConstraint):
        return _add_constraint(table, action, stmt, created)
    if isinstance(action, exp.AlterSet):
        text = action.sql("postgres").upper()
        if any(word in text for word in ("TABLESPACE", "LOGGED", "ACCESS METHOD", "WITHOUT")):
            return contract(f"{text[:40].lower()} on {table}, which rewrites it under an exclusive lock",
                            "changing-table-structure")
        return expand(f"changes storage parameters of {table}")
    return cannot_tell(f"alters {table} ({action.sql()[:60]})")


def _add_constraint(table: str, action: exp.AddConstraint, stmt: exp.Alter, created: set[str]) -> Operation:
    if _key(table) in created:
        return expand(f"adds a constraint to the new table {table}")
    if stmt.args.get("not_valid"):
        return expand(f"adds a constraint to {table} NOT VALID", subject=_not_null_check(table, action))
    body = action.sql().upper()
    if "UNIQUE" in body or "PRIMARY KEY" in body or "EXCLUDE" in body:
        return contract(f"adds a unique constraint to {table}, which builds its index while blocking writes",
                        "disallowed-unique-constraint")
    rule = "adding-foreign-key-constraint" if "REFERENCES" in body else "constraint-missing-not-valid"
    return contract(f"adds a constraint to {table} without NOT VALID, which checks every row under lock", rule)


def _not_null_check(table: str, action: exp.AddConstraint) -> tuple[str, str] | None:
    """("not-valid", "<constraint>|<table.column>") for `CONSTRAINT n CHECK (col IS NOT NULL)`,
    ("not-valid", "<constraint>|") for any other named constraint."""
    for constraint in action.expressions:
        if not isinstance(constraint, exp.Constraint):
            continue
        checks = [e for e in constraint.expressions if isinstance(e, exp.CheckColumnConstraint)]
        test = checks[0].this if len(checks) == 1 else None
        if isinstance(test, exp.Is) and test.args.get("negate") and isinstance(test.expression, exp.Null) \
                and isinstance(test.this, exp.Column):
            return ("not-valid", f"{constraint.name}|{table}.{test.this.name}".lower())
        return ("not-valid", f"{constraint.name}|".lower())
    return None


def _nullable(column: exp.ColumnDef) -> bool:
    return not any(isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null")
                   for k in _constraint_kinds(column))


def _alter_column(table: str, action: exp.AlterColumn, created: set[str]) -> Operation:
    column = f"{table}.{action.name}"
    if _key(table) in created:
        return expand(f"alters column {column} of the new table {table}")
    if action.args.get("dtype") is not None:
        return contract(f"changes the type of {column} to {action.args['dtype'].sql()}", "changing-column-type",
                        subject=("alter-column", column.lower()))
    if action.args.get("allow_null") is False:
        return contract(f"sets {column} NOT NULL", "adding-not-nullable-field",
                        subject=("set-not-null", column.lower()))
    if action.args.get("allow_null") is True:
        return expand(f"lets {column} be NULL")
    if action.args.get("default") is not None:
        return expand(f"sets a default on {column}", subject=("set-default", column.lower()))
    if action.args.get("drop"):
        return contract(f"drops the default of {column}, which inserts from the running release may need",
                        "dropping-column-default", subject=("drop-default", column.lower()))
    return cannot_tell(f"alters {column} ({action.sql()[:60]})")
