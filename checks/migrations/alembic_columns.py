"""Alembic's column operations: `op.add_column` and `op.alter_column`."""

from __future__ import annotations

import ast

from checks.migrations.operation import Operation, cannot_tell, contract, expand, generated_column
from checks.migrations.py_ast import arg, call_name, const, has_kw
from checks.migrations.sql import volatile


def add_column(call: ast.Call, table: str, shift: int, new_table: bool) -> Operation:
    column = arg(call, 1 + shift, "column")
    if not isinstance(column, ast.Call) or call_name(column) != "Column":
        return cannot_tell(f"adds a column to {table} whose definition cannot be read (not a literal sa.Column)")
    name = const(arg(column, 0, "name"), "?")
    where = f"{table}.{name}"
    if new_table:
        return expand(f"adds column {where} to the new table {table}")
    nullable = const(arg(column, -1, "nullable"), True)
    primary = const(arg(column, -1, "primary_key"), False) is True
    numbered = const(arg(column, -1, "autoincrement"), False) is True or any(
        isinstance(a, ast.Call) and call_name(a) in ("Identity", "Sequence") for a in column.args)
    server_default = has_kw(column, "server_default") and const(arg(column, -1, "server_default"), "x") is not None
    if (generated := generated_column(where, primary, numbered)) is not None:
        return generated
    default_node = arg(column, -1, "server_default")
    if isinstance(default_node, ast.Call) and call_name(default_node) == "text" and default_node.args:
        default_node = default_node.args[0]
    default_text = const(default_node, "")
    if isinstance(default_text, str) and volatile(default_text):
        return contract(f"adds column {where} with a volatile server default ({default_text[:40]}), which rewrites "
                        f"{table} under an exclusive lock", "adding-field-with-default")
    if nullable is not True and not server_default:
        return contract(f"adds column {where} NOT NULL without a server default, "
                        "which the running release does not write", "adding-required-field")
    return expand(f"adds column {where}" + (" with a server default" if server_default else " (nullable)"),
                  subject=("add-column", where.lower()))


# alter_column's keywords that only describe the column as it is.
_CONTEXT_ONLY = {"existing_type", "existing_nullable", "existing_server_default", "existing_comment", "schema"}


def alter_column(call: ast.Call, column: str, new_table: bool) -> Operation:
    changes = {kw.arg for kw in call.keywords if kw.arg is not None}
    if len(changes) < len(call.keywords):  # a `**mapping`, whose keys cannot be read
        return cannot_tell(f"alters column {column} with keywords that cannot be read")
    if new_table:
        return expand(f"alters column {column} of a table created in this migration")
    if "new_column_name" in changes:
        return contract(f"renames column {column} to {const(arg(call, -1, 'new_column_name'), '?')}",
                        "renaming-column")
    if "type_" in changes:
        return contract(f"changes the type of {column}", "changing-column-type")
    if "nullable" in changes and const(arg(call, -1, "nullable")) is not True:
        return contract(f"sets {column} NOT NULL", "adding-not-nullable-field",
                        subject=("set-not-null", column.lower()))
    subject = None
    if "server_default" in changes:
        default = arg(call, -1, "server_default")
        if (isinstance(default, ast.Constant) and default.value is None) or const(default, "x") is False:
            return contract(f"drops the server default of {column}, which inserts from the running release may "
                            "need", "dropping-column-default", subject=("drop-default", column.lower()))
        subject = ("set-default", column.lower())
    loosening = changes - _CONTEXT_ONLY
    if loosening <= {"nullable", "server_default", "comment"} and loosening:
        return expand(f"alters {column} compatibly ({', '.join(sorted(loosening))})", subject=subject)
    return cannot_tell(f"alters column {column} ({', '.join(sorted(loosening)) or 'nothing named'})")
