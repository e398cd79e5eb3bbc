"""Migration safety: find migrations in a diff, classify each as expand or contract, and decide.

*Expand* leaves a schema the running (old) release still works with: new tables, nullable
columns, indexes built concurrently. *Contract* breaks or blocks it: dropped or renamed tables
and columns, type changes, NOT NULL without a default, index builds that lock writes. A contract
migration is never applied blindly, and a release that carries one is never rolled back
automatically past it.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from bot.domain import GateResult
from checks.approval import approval_gate
from checks.inputs import Approval, MigrationFinding

GATE = "migrations"
EXPAND, CONTRACT = "expand", "contract"


@dataclass(frozen=True)
class Operation:
    kind: str  # expand | contract
    what: str  # a human phrase: "drops column users.email"


# ---------------------------------------------------------------------------------------------
# Detection


def _glob_regex(pattern: str) -> re.Pattern:
    """A path glob where `*` stays inside one directory and `**/` spans any number of them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _framework_of(path: str) -> str | None:
    p = PurePosixPath(path)
    parent = p.parent.name
    if p.suffix == ".py" and p.name != "__init__.py":
        if parent == "versions":
            return "alembic"
        # Flask-Migrate keeps Alembic's env.py in a `migrations/` folder too.
        if parent == "migrations" and p.name != "env.py":
            return "django"
    if p.suffix == ".rb" and p.parent.parts[-2:] == ("db", "migrate"):
        return "rails"
    if p.suffix == ".sql" and re.match(r"^V[^_]*__.+\.sql$", p.name):
        return "flyway"
    return None


def detect_migrations(changed_paths: Iterable[str], extra_globs: Iterable[str] = ()) -> list[str]:
    """The changed paths that are migrations: Django `*/migrations/*.py` (not `__init__`),
    Alembic `versions/*.py`, Rails `db/migrate/*.rb`, Flyway `V*__*.sql`, and `extra_globs`."""
    globs = [_glob_regex(g.lstrip("/")) for g in extra_globs]
    found: list[str] = []
    for path in changed_paths:
        clean = path.lstrip("/")
        if path not in found and (_framework_of(clean) or any(g.match(clean) for g in globs)):
            found.append(path)
    return found


# ---------------------------------------------------------------------------------------------
# Classification


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


# --- SQL (Flyway files, Django RunSQL, Alembic op.execute, Rails execute) ---------------------


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


def _statement(stmt: exp.Expression, created: set[str], dialect: str) -> list[Operation]:
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
            return Operation(CONTRACT, f"creates index {name} on {table} without CONCURRENTLY, which blocks writes to {table} while it builds")
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
            return Operation(EXPAND, f"drops index {names}" + (" concurrently" if stmt.args.get("concurrently") else ""))
        return Operation(CONTRACT, f"drops index {names} without CONCURRENTLY, which locks its table")
    return Operation(CONTRACT, f"drops {kind.lower() or 'object'} {names}")


def _not_null_without_default(column: exp.ColumnDef) -> bool:
    kinds = [c.args.get("kind") for c in column.args.get("constraints") or []]
    not_null = any(isinstance(k, (exp.NotNullColumnConstraint, exp.PrimaryKeyColumnConstraint)) and not k.args.get("allow_null") for k in kinds)
    has_default = any(isinstance(k, exp.DefaultColumnConstraint) for k in kinds)
    serial = column.args.get("kind") is not None and column.args["kind"].this in (
        exp.DataType.Type.SERIAL, exp.DataType.Type.BIGSERIAL, exp.DataType.Type.SMALLSERIAL)
    return not_null and not has_default and not serial


def _alter_action(table: str, action: exp.Expression, stmt: exp.Alter, created: set[str]) -> Operation:
    if isinstance(action, exp.ColumnDef):
        column = f"{table}.{action.name}"
        if _not_null_without_default(action) and table not in created:
            return Operation(CONTRACT, f"adds column {column} NOT NULL without a default, which the running release does not write")
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
    re.compile(r"^CREATE\s+EXTENSION\b", re.I),
    re.compile(r"^ALTER\s+TABLE\s+\S+\s+VALIDATE\s+CONSTRAINT\b", re.I),
    re.compile(r"^(ANALYZE|COMMENT|SET|RESET|VACUUM)\b", re.I),
)


def _command(stmt: exp.Command) -> Operation:
    text = f"{stmt.this} {stmt.expression.sql() if isinstance(stmt.expression, exp.Expression) else stmt.expression or ''}".strip()
    text = " ".join(text.split())
    if any(p.match(text) for p in _HARMLESS_COMMANDS):
        return Operation(EXPAND, f"runs {text[:60]}")
    return Operation(CONTRACT, f"statement not understood ({text[:60]}); treated as contract")


# --- squawk, when installed -------------------------------------------------------------------

# squawk rules whose finding means the running release breaks or the table locks.
_SQUAWK_CONTRACT = {
    "adding-not-nullable-field", "adding-required-field", "ban-drop-column", "ban-drop-table",
    "ban-drop-database", "changing-column-type", "renaming-column", "renaming-table",
    "require-concurrent-index-creation", "require-concurrent-index-deletion",
    "constraint-missing-not-valid", "disallowed-unique-constraint", "adding-foreign-key-constraint",
    "ban-char-field", "adding-serial-primary-key-field", "ban-concurrent-index-creation-in-transaction",
}
_SQUAWK_LINE = re.compile(r"^\S*:\d+:\d+:\s*(?:warning|error):\s*(?P<rule>[a-z0-9-]+)", re.M)


def squawk_operations(sql: str) -> list[Operation]:
    """squawk's findings for PostgreSQL SQL; nothing when squawk is not on PATH."""
    squawk = shutil.which("squawk")
    if squawk is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "migration.sql")
        path.write_text(sql)
        try:
            done = subprocess.run([squawk, str(path)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return []
    return parse_squawk_output(done.stdout)


def parse_squawk_output(output: str) -> list[Operation]:
    """`file:line:col: warning: rule-name` lines from squawk's text reporter."""
    ops = []
    for match in _SQUAWK_LINE.finditer(output):
        rule = match.group("rule")
        ops.append(Operation(CONTRACT if rule in _SQUAWK_CONTRACT else EXPAND, f"squawk: {rule}"))
    return ops


# --- Python: Django and Alembic, read with ast --------------------------------------------


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
    return [Operation(CONTRACT, "neither a Django migration (no `operations`) nor an Alembic one (no `upgrade()`); treated as contract")]


def _const(node: ast.AST | None, default=None):
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
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
                if any(isinstance(t, ast.Name) and t.id == "operations" for t in targets):
                    value = stmt.value
                    return list(value.elts) if isinstance(value, (ast.List, ast.Tuple)) else [value]
            return []
    return None


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
    model = _const(_arg(node, 0, "name" if op in _DJANGO_MODEL_OPS else "old_name" if op == "RenameModel" else "model_name"), "?")
    field = _const(_arg(node, 1, "old_name" if op == "RenameField" else "name"), "?")
    if op == "AddField":
        return [_django_add_field(node, f"{model}.{field}")]
    if op == "RunSQL":
        return _run_sql(_arg(node, 0, "sql"), "RunSQL")
    if op == "SeparateDatabaseAndState":
        database = _arg(node, 0, "database_operations")
        elements = database.elts if isinstance(database, (ast.List, ast.Tuple)) else []
        return [o for element in elements for o in _django(element)]
    names = {"model": model, "field": field, "new": _const(_arg(node, 2 if op == "RenameField" else 1, "new_name"), "?")}
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
    return Operation(CONTRACT, f"adds field {name} NOT NULL without a default, which the running release does not write")


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
        parts = [v if isinstance(v, str) else v[0] if isinstance(v, (list, tuple)) and v and isinstance(v[0], str) else None for v in value]
        if all(isinstance(p, str) for p in parts):
            return ";\n".join(parts)
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
                call = item.context_expr
                if isinstance(call, ast.Call) and _call_name(call) == "batch_alter_table" and isinstance(item.optional_vars, ast.Name):
                    batches[item.optional_vars.id] = str(_const(_arg(call, 0, "table_name"), "?"))
    for node in ast.walk(upgrade):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)):
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

    def arg(position: int, keyword: str, default="?"):
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
            return [Operation(CONTRACT, f"adds column {table}.{col_name} NOT NULL without a server default, which the running release does not write")]
        return [Operation(EXPAND, f"adds column {table}.{col_name}" + (" with a server default" if has_default else " (nullable)"))]
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
        return [Operation(CONTRACT, f"creates index {index} on {table} without postgresql_concurrently=True, which blocks writes while it builds")]
    if name == "drop_index":
        index = _const(_arg(call, 0, "index_name"), "?")
        if _const(_arg(call, 99, "postgresql_concurrently"), False) is True:
            return [Operation(EXPAND, f"drops index {index} concurrently")]
        return [Operation(CONTRACT, f"drops index {index} without postgresql_concurrently=True, which locks its table")]
    if name == "execute":
        return _run_sql(_arg(call, 0, "sqltext"), "op.execute")
    if name in _ALEMBIC_SIMPLE:
        kind, template = _ALEMBIC_SIMPLE[name]
        first = batch_table if batch_table is not None and name == "drop_column" else _const(_arg(call, 0, ""), "?")
        second = _const(_arg(call, 0 if batch_table is not None and name == "drop_column" else 1, ""), "?")
        return [Operation(kind, template.format(first, second))]
    return [Operation(CONTRACT, f"op.{name} is not recognised; treated as contract")]


def _alembic_alter_column(call: ast.Call, column: str) -> Operation:
    changes = {kw.arg for kw in call.keywords}
    if "new_column_name" in changes:
        return Operation(CONTRACT, f"renames column {column} to {_const(_arg(call, 99, 'new_column_name'), '?')}")
    if "type_" in changes:
        return Operation(CONTRACT, f"changes the type of {column}")
    if "nullable" in changes and _const(_arg(call, 99, "nullable")) is False:
        return Operation(CONTRACT, f"sets {column} NOT NULL")
    loosening = {"nullable", "server_default", "comment", "existing_type", "existing_nullable", "existing_server_default", "schema"}
    if changes and changes <= loosening and _const(_arg(call, 99, "server_default"), "x") is not None:
        return Operation(EXPAND, f"alters {column} compatibly ({', '.join(sorted(changes - {'existing_type', 'existing_nullable', 'existing_server_default', 'schema'}))})")
    return Operation(CONTRACT, f"alters column {column}")


# --- Rails: its migration DSL, read statement by statement ------------------------------------

_RUBY_HEREDOC = re.compile(r"<<[~-]?(['\"]?)([A-Z_]+)\1")


def _ruby_statements(text: str) -> tuple[list[str], list[str]]:
    """Logical statements of the migration's `change`/`up` body, comments dropped, each heredoc
    replaced by a `HEREDOC<n>` marker whose text is in the second list; `down` is skipped
    because a deploy never runs it."""
    lines = text.splitlines()
    statements: list[str] = []
    heredocs: list[str] = []
    skipping = False
    i = 0
    while i < len(lines):
        line = lines[i].split(" #")[0].rstrip() if not lines[i].lstrip().startswith("#") else ""
        stripped = line.strip()
        i += 1
        if re.match(r"^def\s+down\b", stripped):
            skipping = True
            continue
        if re.match(r"^def\s+(up|change)\b", stripped):
            skipping = False
            continue
        if skipping or not stripped:
            continue
        heredoc = _RUBY_HEREDOC.search(stripped)
        if heredoc:
            body = []
            while i < len(lines) and lines[i].strip() != heredoc.group(2):
                body.append(lines[i])
                i += 1
            i += 1
            heredocs.append("\n".join(body))
            stripped = stripped[: heredoc.start()] + f"HEREDOC{len(heredocs) - 1}" + stripped[heredoc.end():]
        # Arguments that run onto the next line end with a comma.
        while stripped.endswith(",") and i < len(lines):
            stripped += " " + lines[i].strip()
            i += 1
        statements.append(stripped)
    return statements, heredocs


_RUBY_CALL = re.compile(r"^(?:(?P<recv>\w+)\.)?(?P<method>[a-z_]+[!?]?)\s*\(?\s*(?P<args>.*?)\)?\s*(?:do\b.*)?$")
_SYMBOL_OR_STRING = re.compile(r""":(\w+)|"([^"]*)"|'([^']*)'""")


def _ruby_args(args: str) -> tuple[list[str], dict[str, str]]:
    positional, options = [], {}
    for key, value in re.findall(r"(\w+):\s*([^,]+)", args):
        options[key] = value.strip()
    head = re.split(r"\b\w+:\s", args)[0]
    for match in _SYMBOL_OR_STRING.finditer(head):
        positional.append(next(g for g in match.groups() if g is not None))
    return positional, options


_RAILS_STRUCTURE = {"class", "end", "def", "reversible", "up_only", "say", "say_with_time", "disable_ddl_transaction!"}
_RAILS_TABLE_METHODS = {"string", "text", "integer", "bigint", "float", "decimal", "numeric", "datetime", "time", "date",
                        "binary", "boolean", "json", "jsonb", "uuid", "references", "belongs_to", "timestamps", "column",
                        "index", "remove", "rename", "change", "change_default", "change_null", "remove_references",
                        "remove_belongs_to", "remove_index", "remove_timestamps", "primary_key", "inet", "citext", "hstore"}


def rails_operations(text: str) -> list[Operation]:
    """Rails migration DSL calls in `change`/`up`, `change_table` blocks included."""
    ops: list[Operation] = []
    created: set[str] = set()
    block_table: tuple[str, str] | None = None  # (table, "create" | "change") for `t.` calls
    statements, heredocs = _ruby_statements(text)
    for statement in statements:
        match = _RUBY_CALL.match(statement)
        if not match:
            ops.append(Operation(CONTRACT, f"`{statement[:60]}` is not recognised; treated as contract"))
            continue
        recv, method, args = match.group("recv"), match.group("method"), match.group("args")
        positional, options = _ruby_args(args)
        if method in _RAILS_STRUCTURE or statement.startswith(("class ", "end", "def ", "#", "}")):
            continue
        if recv and block_table and method in _RAILS_TABLE_METHODS:
            table, mode = block_table
            if mode == "change":
                ops.extend(_rails_change_table(table, method, positional, options))
            continue
        if method in ("create_table", "create_join_table"):
            table = positional[0] if method == "create_table" else "_".join(sorted(positional[:2]))
            created.add(table)
            block_table = (table, "create") if " do" in statement else None
            ops.append(Operation(EXPAND, f"creates table {table}"))
            continue
        if method == "change_table":
            block_table = (positional[0] if positional else "?", "change")
            continue
        ops.extend(_rails_call(_RubyCall(method, positional, options, args), created, heredocs))
    return ops


@dataclass(frozen=True)
class _RubyCall:
    method: str
    positional: list[str]
    options: dict[str, str]
    args: str  # the raw argument text


def _rails_call(call: _RubyCall, created: set[str], heredocs: list[str]) -> list[Operation]:
    method, pos, opts, args = call.method, call.positional, call.options, call.args
    table = pos[0] if pos else "?"
    column = pos[1] if len(pos) > 1 else "?"
    if method == "add_column":
        if opts.get("null") == "false" and "default" not in opts and table not in created:
            return [Operation(CONTRACT, f"adds column {table}.{column} null: false without a default, which the running release does not write")]
        return [Operation(EXPAND, f"adds column {table}.{column}")]
    if method in ("add_index", "add_reference", "add_belongs_to"):
        what = f"an index on {table}" if method == "add_index" else f"reference {table}.{column}"
        if method != "add_index" and opts.get("null") == "false" and table not in created:
            return [Operation(CONTRACT, f"adds {what} null: false, which the running release does not write")]
        if method != "add_index" and opts.get("index") == "false":
            return [Operation(EXPAND, f"adds {what} without an index")]
        if opts.get("algorithm") == ":concurrently":
            return [Operation(EXPAND, f"adds {what} with algorithm: :concurrently")]
        if table in created:
            return [Operation(EXPAND, f"adds {what}, a new table")]
        return [Operation(CONTRACT, f"adds {what} without algorithm: :concurrently, which blocks writes while the index builds")]
    if method == "change_column_null":
        flag = pos[2] if len(pos) > 2 else args.rsplit(",", 1)[-1].strip()
        if "false" in flag:
            return [Operation(CONTRACT, f"sets {table}.{column} NOT NULL")]
        return [Operation(EXPAND, f"lets {table}.{column} be NULL")]
    if method == "execute":
        marker = re.match(r"^\s*HEREDOC(\d+)", args)
        sql = heredocs[int(marker.group(1))] if marker else pos[0] if pos else None
        if sql is None:
            literal = re.match(r"^\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", args)
            sql = _const(ast.parse(literal.group(1), mode="eval").body) if literal else None
        if not isinstance(sql, str):
            return [Operation(CONTRACT, "execute with SQL that is not a literal; treated as contract")]
        return sql_operations(sql)
    simple = {
        "remove_column": (CONTRACT, f"removes column {table}.{column}"),
        "remove_columns": (CONTRACT, f"removes columns {table}.{', '.join(pos[1:])}"),
        "remove_reference": (CONTRACT, f"removes reference {table}.{column}"),
        "remove_belongs_to": (CONTRACT, f"removes reference {table}.{column}"),
        "remove_timestamps": (CONTRACT, f"removes timestamps from {table}"),
        "drop_table": (CONTRACT, f"drops table {table}"),
        "drop_join_table": (CONTRACT, f"drops join table {'_'.join(sorted(pos[:2]))}"),
        "rename_column": (CONTRACT, f"renames column {table}.{column} to {pos[2] if len(pos) > 2 else '?'}"),
        "rename_table": (CONTRACT, f"renames table {table} to {column}"),
        "rename_index": (CONTRACT, f"renames index {column} on {table}"),
        "change_column": (CONTRACT, f"changes column {table}.{column}"),
        "change_column_default": (EXPAND, f"changes the default of {table}.{column}"),
        "add_timestamps": (EXPAND if opts.get("null") != "false" else CONTRACT, f"adds timestamps to {table}"),
        "remove_index": (EXPAND if opts.get("algorithm") == ":concurrently" else CONTRACT,
                         f"removes an index on {table}" + ("" if opts.get("algorithm") == ":concurrently" else " without algorithm: :concurrently")),
        "add_foreign_key": (EXPAND if opts.get("validate") == "false" else CONTRACT,
                            f"adds a foreign key {table} -> {column}" + ("" if opts.get("validate") == "false" else ", which checks every row under lock")),
        "validate_foreign_key": (EXPAND, f"validates a foreign key on {table}"),
        "remove_foreign_key": (EXPAND, f"removes a foreign key on {table}"),
        "enable_extension": (EXPAND, f"enables extension {table}"),
        "add_check_constraint": (EXPAND if opts.get("validate") == "false" else CONTRACT, f"adds a check constraint on {table}"),
        "remove_check_constraint": (EXPAND, f"removes a check constraint on {table}"),
    }
    if method in simple:
        kind, what = simple[method]
        return [Operation(kind, what)]
    return [Operation(CONTRACT, f"{method} is not recognised; treated as contract")]


def _rails_change_table(table: str, method: str, pos: list[str], opts: dict[str, str]) -> list[Operation]:
    column = pos[0] if pos else "?"
    if method in ("remove", "remove_references", "remove_belongs_to", "remove_timestamps"):
        return [Operation(CONTRACT, f"removes {table}.{', '.join(pos) or 'timestamps'}")]
    if method == "rename":
        return [Operation(CONTRACT, f"renames column {table}.{column} to {pos[1] if len(pos) > 1 else '?'}")]
    if method == "change":
        return [Operation(CONTRACT, f"changes column {table}.{column}")]
    if method == "change_null":
        return [Operation(CONTRACT if "false" in " ".join(pos[1:]) + str(opts) else EXPAND, f"changes NULL on {table}.{column}")]
    if method == "change_default":
        return [Operation(EXPAND, f"changes the default of {table}.{column}")]
    if method in ("index", "remove_index"):
        if opts.get("algorithm") == ":concurrently":
            return [Operation(EXPAND, f"changes an index on {table} concurrently")]
        return [Operation(CONTRACT, f"changes an index on {table} without algorithm: :concurrently, which blocks writes")]
    if opts.get("null") == "false" and "default" not in opts:
        return [Operation(CONTRACT, f"adds column {table}.{column} null: false without a default")]
    return [Operation(EXPAND, f"adds column {table}.{column}")]


# ---------------------------------------------------------------------------------------------
# Decisions


def migrations_gate(findings: list[MigrationFinding], policy: str, approval: Approval | None, deployers: list[str] = ()) -> GateResult:
    """`block`: any migration blocks. `approve`: any migration waits for a person's approval.
    `allow-expand`: expand migrations pass; a contract one waits for approval. A rejection blocks."""
    if not findings:
        return GateResult.ok(GATE, "no migrations")
    contract = [f for f in findings if f.contract]
    summary = describe(contract or findings)
    if policy == "block":
        return GateResult.block(GATE, f"migrations are not deployed automatically (policy: block): {summary}; apply them by hand first")
    if policy == "allow-expand" and not contract:
        return GateResult.ok(GATE, f"expand-only migrations: {summary}")
    asked_for = f"{'contract ' if contract else ''}migration{'s' if len(contract or findings) > 1 else ''} {summary}"
    return approval_gate(approval, list(deployers), asked_for=asked_for, gate=GATE)


def describe(findings: list[MigrationFinding]) -> str:
    """`db/migrate/1_drop.rb (contract: drops column users.email)`, joined."""
    parts = []
    for f in findings:
        why = f.reasons[0] if f.reasons else f.kind
        more = f" +{len(f.reasons) - 1} more" if len(f.reasons) > 1 else ""
        parts.append(f"{f.path} ({why}{more})")
    return ", ".join(parts)


def rollback_allowed(findings: list[MigrationFinding]) -> tuple[bool, str]:
    """Whether a release may be rolled back automatically past its migrations. Contract
    migrations changed the schema in a way the previous release cannot run against, so a
    person decides."""
    contract = [f for f in findings if f.contract]
    if not contract:
        return True, "no contract migrations: the previous release still works with the schema"
    return False, (
        "not rolling back automatically: this release applied contract migrations the previous "
        f"release may not work with: {describe(contract)}; a person must decide (roll forward, or restore the schema, then roll back)"
    )
