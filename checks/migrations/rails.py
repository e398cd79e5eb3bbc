"""Rails migrations: its migration DSL, read statement by statement."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from checks.migrations.operation import CONTRACT, EXPAND, Kind, Operation

# A Ruby string literal reads like a Python one, so ast's literal reader serves both.
from checks.migrations.python_ops import _const
from checks.migrations.sql import sql_operations

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
_RAILS_TABLE_METHODS = {
    "string", "text", "integer", "bigint", "float", "decimal", "numeric", "datetime", "time", "date", "binary",
    "boolean", "json", "jsonb", "uuid", "references", "belongs_to", "timestamps", "column", "index", "remove",
    "rename", "change", "change_default", "change_null", "remove_references", "remove_belongs_to", "remove_index",
    "remove_timestamps", "primary_key", "inet", "citext", "hstore",
}


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
            return [Operation(CONTRACT, f"adds column {table}.{column} null: false without a default, "
                                        "which the running release does not write")]
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
        return [Operation(CONTRACT, f"adds {what} without algorithm: :concurrently, "
                                    "which blocks writes while the index builds")]
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
    concurrently = opts.get("algorithm") == ":concurrently"
    not_validated = opts.get("validate") == "false"
    simple: dict[str, tuple[Kind, str]] = {
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
        "remove_index": (EXPAND, f"removes an index on {table}") if concurrently
                        else (CONTRACT, f"removes an index on {table} without algorithm: :concurrently"),
        "add_foreign_key": (EXPAND, f"adds a foreign key {table} -> {column}") if not_validated else
                           (CONTRACT, f"adds a foreign key {table} -> {column}, which checks every row under lock"),
        "validate_foreign_key": (EXPAND, f"validates a foreign key on {table}"),
        "remove_foreign_key": (EXPAND, f"removes a foreign key on {table}"),
        "enable_extension": (EXPAND, f"enables extension {table}"),
        "add_check_constraint": (EXPAND if not_validated else CONTRACT, f"adds a check constraint on {table}"),
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
        kind = CONTRACT if "false" in " ".join(pos[1:]) + str(opts) else EXPAND
        return [Operation(kind, f"changes NULL on {table}.{column}")]
    if method == "change_default":
        return [Operation(EXPAND, f"changes the default of {table}.{column}")]
    if method in ("index", "remove_index"):
        if opts.get("algorithm") == ":concurrently":
            return [Operation(EXPAND, f"changes an index on {table} concurrently")]
        return [Operation(CONTRACT, f"changes an index on {table} without algorithm: :concurrently, "
                                    "which blocks writes")]
    if opts.get("null") == "false" and "default" not in opts:
        return [Operation(CONTRACT, f"adds column {table}.{column} null: false without a default")]
    return [Operation(EXPAND, f"adds column {table}.{column}")]
