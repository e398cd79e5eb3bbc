"""Rails migrations: the migration DSL in `change`/`up`, read statement by statement."""

from __future__ import annotations

import ast
import re

from checks.migrations.operation import Operation, cannot_tell, contract, expand
from checks.migrations.py_ast import const
from checks.migrations.rails_text import MAX_STATEMENT, Args, Call, hidden_code, parse_call, statements
from checks.migrations.sql import sql_operations, volatile

_STRUCTURE = {
    "class", "end", "def", "if", "unless", "elsif", "case", "when", "begin", "reversible", "up_only", "say",
    "say_with_time", "disable_ddl_transaction!", "safety_assured", "puts", "sleep", "require", "include", "extend",
    "else", "rescue", "ensure",
    # GitLab's and Mastodon's migration helpers that only set how the migration runs.
    "milestone", "restrict_gitlab_migration", "enable_lock_retries!", "with_lock_retries", "skip_if_multi_database",
    "disable_lock_timeout!",
}
# Helpers of large Rails applications (GitLab, Mastodon) built to be safe: concurrent index
# builds, NOT VALID foreign keys validated separately, batched background migrations.
_SAFE_HELPERS = {
    "add_concurrent_index": "adds an index concurrently", "remove_concurrent_index": "removes an index concurrently",
    "remove_concurrent_index_by_name": "removes an index concurrently",
    "add_concurrent_foreign_key": "adds a foreign key NOT VALID, validated separately",
    "prepare_async_index": "schedules an index to be built concurrently",
    "unprepare_async_index": "unschedules an asynchronous index",
    "prepare_async_foreign_key_validation": "schedules a foreign key validation",
    "queue_batched_background_migration": "queues a batched background migration (data only)",
    "delete_batched_background_migration": "removes a queued background migration",
    "ensure_batched_background_migration_is_finished": "waits for a batched background migration",
    "finalize_batched_background_migration": "finishes a batched background migration (data only)",
    "validate_not_null_constraint": "validates a NOT NULL check constraint",
    "validate_text_limit": "validates a text limit check constraint",
    "rename_column_concurrently": "starts a rename by copying the column with a trigger (old name still works)",
    "change_column_type_concurrently": "starts a type change on a copy of the column (old column still works)",
    "add_column_with_default": "adds a column and backfills its default in batches",
}
_GUARDED_HELPERS = {  # safe with validate: false, else they check every row under lock
    "add_not_null_constraint": "adds a NOT NULL check constraint", "add_text_limit": "adds a text limit check",
}
_TABLE_METHODS = {
    "string", "text", "integer", "bigint", "float", "decimal", "numeric", "datetime", "time", "date", "binary",
    "boolean", "json", "jsonb", "uuid", "references", "belongs_to", "timestamps", "column", "index", "remove",
    "rename", "change", "change_default", "change_null", "remove_references", "remove_belongs_to", "remove_index",
    "remove_timestamps", "primary_key", "inet", "citext", "hstore", "timestamp", "check_constraint",
    "remove_check_constraint", "foreign_key", "remove_foreign_key", "enum", "virtual", "bigserial", "serial",
}
# Methods that read or write rows, never the schema: data migrations and batched backfills.
_DATA_METHODS = {
    "unscoped", "where", "not", "in_batches", "find_each", "find_in_batches", "each", "each_slice",
    "update_all", "update_column", "update_columns", "update", "update!", "save", "save!", "touch_all",
    "delete_all", "destroy_all", "reset_column_information", "find_by", "find", "pluck", "limit", "order",
    "select", "joins", "includes", "all", "none", "insert_all", "upsert_all", "create", "create!", "each_with_index",
    "find_or_create_by", "find_or_create_by!", "map", "times",
}
_SERIAL_TYPES = {"primary_key", "serial", "bigserial", "smallserial"}


def rails_operations(text: str) -> list[Operation]:
    """Rails migration DSL calls in `change`/`up`, `create_table`/`change_table` blocks included."""
    ops: list[Operation] = []
    created: set[str] = set()
    block_table: tuple[str, str] | None = None  # (table, "create" | "change") for `t.` calls
    lines, heredocs = statements(text)
    for statement in lines:
        if len(statement) > MAX_STATEMENT:
            ops.append(cannot_tell(f"a statement of {len(statement)} characters is too long to read"))
            continue
        constant = re.match(r"^[A-Z][A-Z0-9_]*\s*=\s*(.*)$", statement)
        if constant:  # INDEX_NAME = "index_users_on_email": a value, unless it calls something
            hidden = hidden_code(constant.group(1))
            if hidden is not None or re.search(r"\w\s*\(", re.sub(r"'[^']*'|\"[^\"]*\"", "", constant.group(1))):
                ops.append(cannot_tell(f"`{statement[:60]}` computes a value that cannot be read"))
            continue
        call = parse_call(statement)
        if call is None:
            if not re.match(r"^(?:end\b|\}|\||class\s|def\s|module\s)", statement):
                ops.append(cannot_tell(f"`{statement[:60]}` is not recognised"))
            continue
        hidden = hidden_code(call.args.raw) if call.method != "execute" else None
        if hidden is not None:
            ops.append(cannot_tell(f"`{statement[:60]}` runs more than one call ({hidden})"))
            continue
        if call.recv is None and call.method in _STRUCTURE:
            continue  # both branches of a condition are read, as if both ran
        if call.recv and block_table and call.method in _TABLE_METHODS:
            table, mode = block_table
            if mode == "change":
                ops.extend(_change_table(table, call.method, call.args))
            continue
        if call.recv is not None:
            ops.append(_receiver_call(call, statement))
            continue
        if call.method in ("create_table", "create_join_table"):
            ops.append(_create_table(call, created))
            block_table = (_table_of(call), "create") if call.block else None
            continue
        if call.method == "change_table":
            block_table = (call.args.positional[0] if call.args.positional else "?", "change")
            continue
        ops.extend(_call(call, created, heredocs))
    return ops


def _table_of(call: Call) -> str:
    pos = call.args.positional
    if call.method == "create_join_table":
        return call.args.options.get("table_name", "").strip(":\"'") or "_".join(sorted(pos[:2]))
    return pos[0] if pos else "?"


def _create_table(call: Call, created: set[str]) -> Operation:
    table = _table_of(call)
    force = call.args.options.get("force")
    if force is not None and force != "false":
        return contract(f"creates table {table} with force: {force}, which drops the existing table and its rows",
                        "ban-drop-table")
    created.add(table)
    return expand(f"creates table {table}")


def _receiver_call(call: Call, statement: str) -> Operation:
    """`User.unscoped.in_batches do |relation|`, `relation.update_all(...)`: rows, not schema."""
    code = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", statement)
    methods = re.findall(r"\.([a-z_]\w*[!?]?)", code)
    if methods == ["reset_column_information"]:
        return expand(f"reloads {call.recv}'s columns (no schema change)")
    if methods and all(m in _DATA_METHODS for m in methods):
        return expand(f"changes rows with {call.recv}.{call.method} (data only, no schema change)",
                                      subject=("data", ""))
    return cannot_tell(f"{call.recv}.{call.method} is not recognised")


def _concurrently(args: Args) -> bool:
    return re.search(r"algorithm\s*(?::|=>)\s*:concurrently", args.raw) is not None


def _falsy(value: str | None) -> bool:
    return value is not None and value.strip() in ("false", "nil")


def _call(call: Call, created: set[str], heredocs: list[str]) -> list[Operation]:
    method, pos, opts = call.method, call.args.positional, call.args.options
    table = pos[0] if pos else "?"
    column = pos[1] if len(pos) > 1 else "?"
    new_table = table in created
    if method == "add_column":
        return [_add_column(table, column, pos[2] if len(pos) > 2 else "", opts, new_table)]
    if method in ("add_index", "add_reference", "add_belongs_to"):
        return [_index_or_reference(method, table, column, call.args, new_table)]
    if method == "change_column_null":
        flag = pos[2] if len(pos) > 2 else "?"
        if flag == "true":
            return [expand(f"lets {table}.{column} be NULL")]
        if new_table:
            return [expand(f"sets {table}.{column} NOT NULL on the new table {table}")]
        backfill = f", backfilling NULLs with {pos[3]}" if len(pos) > 3 else ""
        # A backfill UPDATEs every NULL row under the migration's lock: never settled by a check.
        subject = ("alter-column" if backfill else "set-not-null", f"{table}.{column}".lower())
        return [contract(f"sets {table}.{column} NOT NULL{backfill}", "adding-not-nullable-field", subject=subject)]
    if method == "change_column_default":
        return [_change_default(table, column, pos[2:], opts)]
    if method == "execute":
        return _execute(call, heredocs)
    if method in _SAFE_HELPERS:
        return [expand(f"{_SAFE_HELPERS[method]} on {table}")]
    if method in _GUARDED_HELPERS:
        if _falsy(opts.get("validate")) or new_table:
            return [expand(f"{_GUARDED_HELPERS[method]} on {table}, not validated")]
        return [contract(f"{_GUARDED_HELPERS[method]} on {table}, which checks every row under lock",
                         "constraint-missing-not-valid")]
    if method in ("cleanup_concurrent_column_rename", "cleanup_concurrent_column_type_change"):
        return [contract(f"drops the old column {table}.{column} after a concurrent rename or type change",
                         "ban-drop-column")]
    return [_simple(method, table, column, call.args, new_table)]


def _add_column(table: str, column: str, kind: str, opts: dict[str, str], new_table: bool) -> Operation:
    where = f"{table}.{column}"
    if new_table:
        return expand(f"adds column {where} to the new table {table}")
    if kind in _SERIAL_TYPES or opts.get("primary_key") == "true" or opts.get("auto_increment") == "true":
        return contract(f"adds auto-numbered key column {where} ({kind or 'primary_key'}) to an existing table, which "
                        "fills every row under an exclusive lock", "adding-serial-primary-key-field")
    default = opts.get("default", "nil").strip()
    if opts.get("null") == "false" and default == "nil":
        return contract(f"adds column {where} null: false without a default, "
                        "which the running release does not write", "adding-required-field")
    if default.startswith(("->", "lambda", "proc")) or volatile(default):
        return contract(f"adds column {where} with a default computed per row ({default[:40]}), which rewrites "
                        f"{table} under an exclusive lock", "adding-field-with-default")
    if kind == "virtual" and opts.get("stored") == "true":
        return contract(f"adds stored generated column {where}, which rewrites {table} under an exclusive lock",
                        "adding-stored-generated-column")
    if opts.get("algorithm") == ":copy" or opts.get("lock") in (":shared", ":exclusive"):
        return contract(f"adds column {where} with {opts.get('algorithm') or opts.get('lock')}, which copies or locks "
                        f"{table}", "changing-table-structure")
    if kind == "json":
        return contract(f"adds json column {where}, which breaks SELECT DISTINCT on {table}", "adding-json-column")
    return expand(f"adds column {where}", subject=("add-column", where.lower()))


def _index_or_reference(method: str, table: str, column: str, args: Args, new_table: bool) -> Operation:
    opts = args.options
    what = f"an index on {table}" if method == "add_index" else f"reference {table}.{column}"
    if new_table:
        return expand(f"adds {what}, a new table")
    if method != "add_index":
        if opts.get("null") == "false":
            return contract(f"adds {what} null: false, which the running release does not write",
                            "adding-required-field")
        foreign_key = opts.get("foreign_key")
        if foreign_key is not None and not _falsy(foreign_key) and "validate: false" not in foreign_key:
            return contract(f"adds {what} with a foreign key, which checks every row under lock",
                            "adding-foreign-key-constraint")
        if _falsy(opts.get("index")):
            return expand(f"adds {what} without an index")
    if _concurrently(args):
        return expand(f"adds {what} with algorithm: :concurrently")
    return contract(f"adds {what} without algorithm: :concurrently, which blocks writes while the index builds",
                    "require-concurrent-index-creation")


def _change_default(table: str, column: str, rest: list[str], opts: dict[str, str]) -> Operation:
    where = f"{table}.{column}"
    to = opts["to"] if "to" in opts else rest[0] if rest else "nil"
    if to.strip() == "nil":
        return contract(f"drops the default of {where}, which inserts from the running release may need",
                        "dropping-column-default", subject=("drop-default", where.lower()))
    return expand(f"changes the default of {where}", subject=("set-default", where.lower()))


def _execute(call: Call, heredocs: list[str]) -> list[Operation]:
    raw = call.args.raw.strip()
    marker = re.match(r"^HEREDOC(\d+)", raw)
    sql: object = None
    if marker:
        sql = heredocs[int(marker.group(1))]
        if "#{" in sql:  # a <<~SQL heredoc interpolates Ruby: the SQL is only known at run time
            return [cannot_tell("execute with SQL that interpolates Ruby (#{...})")]
    else:
        literal = re.match(r"^('(?:[^'\\]|\\.)*'|\"(?:[^\"\\#]|\\.)*\")$", raw)
        if literal:
            sql = const(ast.parse(literal.group(1), mode="eval").body)
    if not isinstance(sql, str):
        return [cannot_tell("execute with SQL that is not a literal")]
    return sql_operations(sql)


def _simple(method: str, table: str, column: str, args: Args, new_table: bool) -> Operation:
    pos, opts = args.positional, args.options
    not_validated = _falsy(opts.get("validate"))
    if method in ("add_foreign_key", "add_check_constraint"):
        what = f"adds a foreign key {table} -> {column}" if method == "add_foreign_key" else \
            f"adds a check constraint on {table}"
        if not_validated or new_table:
            return expand(what + (" not validated" if not_validated else ", a new table"),
                          subject=_not_valid(method, table, pos, opts) if not_validated else None)
        rule = "adding-foreign-key-constraint" if method == "add_foreign_key" else "constraint-missing-not-valid"
        return contract(f"{what}, which checks every row under lock", rule)
    if method in ("add_unique_constraint", "add_exclusion_constraint"):
        if new_table or opts.get("using_index"):
            how = "on a new table" if new_table else f"using the index {opts['using_index']} built beforehand"
            return expand(f"adds a {method.split('_')[1]} constraint to {table} {how}")
        return contract(f"adds a {method.split('_')[1]} constraint to {table}, which builds its index while blocking "
                        "writes", "disallowed-unique-constraint")
    if method in ("remove_unique_constraint", "remove_exclusion_constraint"):
        return expand(f"removes a {method.split('_')[1]} constraint from {table}")
    if method == "remove_index":
        if _concurrently(args) or new_table:
            return expand(f"removes an index on {table} concurrently")
        return contract(f"removes an index on {table} without algorithm: :concurrently",
                        "require-concurrent-index-deletion")
    if method == "add_timestamps":
        if opts.get("null") == "false" and "default" not in opts and not new_table:
            return contract(f"adds timestamps to {table} null: false without a default", "adding-required-field")
        return expand(f"adds timestamps to {table}")
    expanding = {
        "change_column_comment": "comments on {table}.{column}", "change_table_comment": "comments on {table}",
        "validate_foreign_key": "validates a foreign key on {table}",
        "validate_check_constraint": "validates a check constraint on {table}",
        "remove_foreign_key": "removes a foreign key on {table}", "enable_extension": "enables extension {table}",
        "remove_check_constraint": "removes a check constraint on {table}",
        "create_enum": "creates enum {table}", "add_enum_value": "adds value {column} to enum {table}",
        "rename_index": "renames index {column} on {table} (no table or column changes)",
    }
    if method in expanding:
        name = opts.get("name", "").strip("\"':")
        subject = ("validated", name.lower()) if method == "validate_check_constraint" and name else None
        if method == "validate_foreign_key":
            subject = ("validated", f"fk:{table}->{column}".lower())
        return expand(expanding[method].format(table=table, column=column), subject=subject)
    contracting = {
        "remove_column": ("ban-drop-column", f"removes column {table}.{column}"),
        "remove_columns": ("ban-drop-column", f"removes columns {table}.{', '.join(pos[1:])}"),
        "remove_reference": ("ban-drop-column", f"removes reference {table}.{column}"),
        "remove_belongs_to": ("ban-drop-column", f"removes reference {table}.{column}"),
        "remove_timestamps": ("ban-drop-column", f"removes timestamps from {table}"),
        "drop_table": ("ban-drop-table", f"drops table {table}"),
        "drop_join_table": ("ban-drop-table", f"drops join table {'_'.join(sorted(pos[:2]))}"),
        "rename_column": ("renaming-column", f"renames column {table}.{column} to {pos[2] if len(pos) > 2 else '?'}"),
        "rename_table": ("renaming-table", f"renames table {table} to {column}"),
        "change_column": ("changing-column-type", f"changes column {table}.{column}"),
        "rename_enum_value": ("renaming-enum-value", f"renames a value of enum {table}"),
        "rename_enum": ("renaming-table", f"renames enum {table}"),
        "drop_enum": ("ban-drop-object", f"drops enum {table}"),
        "disable_extension": ("ban-drop-object", f"disables extension {table}"),
    }
    if method in contracting:
        rule, what = contracting[method]
        if new_table and rule != "ban-drop-table":
            return expand(f"{what} (a table created in this migration)")
        subject = ("alter-column", f"{table}.{column}".lower()) if method == "change_column" else None
        return contract(what, rule, subject=subject)
    return cannot_tell(f"{method} is not recognised")


def _not_valid(method: str, table: str, pos: list[str], opts: dict[str, str]) -> tuple[str, str] | None:
    """What settle() needs of a constraint added with validate: false: its name, and the column a
    `"col IS NOT NULL"` check covers."""
    if method == "add_foreign_key":
        return ("not-valid", f"fk:{table}->{pos[1] if len(pos) > 1 else '?'}|".lower())
    name = opts.get("name", "").strip("\"':")
    if not name:
        return None
    match = re.fullmatch(r'\s*"?(\w+)"?\s+IS\s+NOT\s+NULL\s*', pos[1] if len(pos) > 1 else "", re.IGNORECASE)
    return ("not-valid", f"{name}|{table}.{match.group(1)}".lower() if match else f"{name}|".lower())


def _change_table(table: str, method: str, args: Args) -> list[Operation]:
    pos, opts = args.positional, args.options
    column = pos[0] if pos else "?"
    if method in ("remove", "remove_references", "remove_belongs_to", "remove_timestamps"):
        return [contract(f"removes {table}.{', '.join(pos) or 'timestamps'}", "ban-drop-column")]
    if method == "rename":
        return [contract(f"renames column {table}.{column} to {pos[1] if len(pos) > 1 else '?'}", "renaming-column")]
    if method == "change":
        return [contract(f"changes column {table}.{column}", "changing-column-type")]
    if method == "change_null":
        if len(pos) > 1 and pos[1] == "true":
            return [expand(f"lets {table}.{column} be NULL")]
        return [contract(f"sets {table}.{column} NOT NULL", "adding-not-nullable-field")]
    if method == "change_default":
        return [_change_default(table, column, pos[1:], opts)]
    if method in ("index", "remove_index"):
        if _concurrently(args):
            return [expand(f"changes an index on {table} concurrently")]
        rule = "require-concurrent-index-creation" if method == "index" else "require-concurrent-index-deletion"
        return [contract(f"changes an index on {table} without algorithm: :concurrently, which blocks writes", rule)]
    if method in ("references", "belongs_to"):
        return [_index_or_reference("add_reference", table, column, args, False)]
    if method in ("foreign_key", "check_constraint"):
        return [_simple("add_" + method, table, column, args, False)]
    if method == "remove_foreign_key":
        return [expand(f"removes a foreign key on {table}")]
    if method == "remove_check_constraint":
        return [expand(f"removes a check constraint on {table}")]
    kind = pos[1] if method == "column" and len(pos) > 1 else method
    return [_add_column(table, column, kind, opts, False)]
