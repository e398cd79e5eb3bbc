"""SQL text before any parser: split into statements (comments dropped, quotes and dollar-quoted
bodies kept whole), and the statements sqlglot keeps as raw commands, classified by their words."""

from __future__ import annotations

import re

from checks.migrations.operation import Operation, cannot_tell, contract, expand

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


class UnreadableSql(ValueError):
    """SQL whose statements cannot be told apart the way PostgreSQL would tell them apart."""


def split_statements(sql: str) -> list[str]:
    """The statements of `sql`, each stripped, comments removed, empty ones dropped. Linear time.

    Raises UnreadableSql for a string, quoted name, dollar-quoted body or comment left open, and
    for a file that changes how PostgreSQL reads backslashes in strings."""
    if re.search(r"standard_conforming_strings|backslash_quote", sql, re.IGNORECASE):
        raise UnreadableSql("it changes how strings are read (standard_conforming_strings)")
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            current.append(" ")
            continue
        if ch == "/" and sql.startswith("/*", i):
            i = _block_comment_end(sql, i)
            current.append(" ")
            continue
        if ch in "'\"":
            escapes = ch == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or
                                                                            sql[i - 2] == "_"))
            end = _quote_end(sql, i, ch, escapes)
            current.append(sql[i:end])
            i = end
            continue
        if ch == "$":
            tag = _DOLLAR_TAG.match(sql, i)
            if tag and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                close = sql.find(tag.group(0), tag.end())
                if close < 0:
                    raise UnreadableSql(f"the dollar-quoted body opened with {tag.group(0)} is never closed")
                end = close + len(tag.group(0))
                current.append(sql[i:end])
                i = end
                continue
        if ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def _block_comment_end(sql: str, i: int) -> int:
    depth, n = 0, len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise UnreadableSql("a /* comment is never closed")


def _quote_end(sql: str, i: int, quote: str, escapes: bool) -> int:
    j, n = i + 1, len(sql)
    while j < n:
        if escapes and sql[j] == "\\":
            j += 2
            continue
        if sql[j] == quote:
            if j + 1 < n and sql[j + 1] == quote:  # '' inside a string
                j += 2
                continue
            return j + 1
        j += 1
    raise UnreadableSql("a quoted string or name is never closed")


_I = re.IGNORECASE
_NAME = r"(?P<name>[\w.\"]+)"
_TABLE = r"ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?" + _NAME
# (pattern, what it does): None = no schema change at all; a callable builds the operation.
_NOTHING = re.compile(
    r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|SET|RESET|ANALYZE|VACUUM|COMMENT\s+ON"
    r"|GRANT|REVOKE|NOTIFY|LISTEN|SHOW|EXPLAIN)\b", _I)
# Functions a SELECT may call and still leave the schema alone; any other may run DDL
# (TimescaleDB's create_hypertable, pg_partman's create_parent): cannot tell.
_READ_ONLY_FUNCTIONS = {
    "setval", "nextval", "currval", "set_config", "current_setting", "pg_advisory_lock", "pg_advisory_unlock",
    "pg_advisory_xact_lock", "pg_try_advisory_lock", "pg_sleep", "pg_notify", "count", "now", "max", "min", "sum",
    "avg", "coalesce", "lower", "upper", "length", "version", "exists", "in", "any", "all", "not", "and", "or",
    "values", "cast", "from", "where", "as", "over", "row_number", "greatest", "least", "pg_get_serial_sequence",
}
_KNOWN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^ALTER\s+INDEX\s+(?:IF\s+EXISTS\s+)?" + _NAME + r"\s+RENAME\s+TO\s+[\w.\"]+$", _I),
     "expand:renames index {name} (no table or column changes)"),
    (re.compile(r"^ALTER\s+INDEX\s+(?:IF\s+EXISTS\s+)?" + _NAME + r"\s+SET\s*\(", _I),
     "expand:changes storage parameters of index {name}"),
    (re.compile(r"^(?:CREATE|ALTER)\s+SEQUENCE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?" + _NAME, _I),
     "expand:creates or alters sequence {name}"),
    (re.compile(r"^REINDEX\b(?=.*\bCONCURRENTLY\b)\s*(?:\([^)]*\)\s*)?\w+\s+(?:CONCURRENTLY\s+)?" + _NAME, _I),
     "expand:rebuilds {name} concurrently"),
    (re.compile(r"^REINDEX\s*(?:\([^)]*\)\s*)?\w+\s+" + _NAME, _I),
     "contract:require-concurrent-reindex:rebuilds {name} without CONCURRENTLY, which blocks writes"),
    (re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|AGGREGATE)\s+" + _NAME, _I),
     "expand:creates or replaces function {name} (no table or column changes)"),
    (re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+" + _NAME, _I),
     "expand:creates trigger {name}"),
    (re.compile(r"^CREATE\s+EXTENSION\b(?:\s+IF\s+NOT\s+EXISTS)?\s+" + _NAME, _I), "expand:creates extension {name}"),
    (re.compile(r"^ALTER\s+TYPE\s+" + _NAME + r"\s+ADD\s+VALUE\b", _I), "expand:adds a value to enum {name}"),
    (re.compile(r"^ALTER\s+TYPE\s+" + _NAME + r"\s+RENAME\s+VALUE\b", _I),
     "contract:renaming-enum-value:renames a value of enum {name}, which the running release still writes"),
    (re.compile(_TABLE + r"\s+(?:DROP\s+CONSTRAINT\s+(?:IF\s+EXISTS\s+)?[\w\"]+\s*,\s*)?ADD\s+(?:CONSTRAINT\s+"
                r"[\w\"]+\s+)?(?:UNIQUE|PRIMARY\s+KEY)\s+USING\s+INDEX\s+[\w\"]+(?:\s+(?:NOT\s+)?DEFERRABLE"
                r"(?:\s+INITIALLY\s+\w+)?)?$", _I),
     "expand:attaches an index built beforehand as a constraint on {name}"),
    (re.compile(_TABLE + r"\s+RENAME\s+CONSTRAINT\s+[\w\"]+\s+TO\s+[\w\"]+$", _I),
     "expand:renames a constraint on {name}"),
    (re.compile(_TABLE + r"\s+DETACH\s+PARTITION\s+[\w.\"]+\s+CONCURRENTLY$", _I),
     "expand:detaches a partition of {name} concurrently"),
    (re.compile(_TABLE + r"\s+DETACH\s+PARTITION\s+[\w.\"]+$", _I),
     "contract:require-concurrent-partition-detach:detaches a partition of {name} without CONCURRENTLY, which "
     "blocks reads and writes"),
    (re.compile(r"^REFRESH\s+MATERIALIZED\s+VIEW\s+CONCURRENTLY\s+" + _NAME + r"(?:\s+WITH\s+(?:NO\s+)?DATA)?$", _I),
     "expand:refreshes materialized view {name} concurrently"),
    (re.compile(r"^REFRESH\s+MATERIALIZED\s+VIEW\s+" + _NAME, _I),
     "contract:require-concurrent-refresh:refreshes materialized view {name} without CONCURRENTLY, which "
     "blocks its readers"),
    (re.compile(_TABLE + r"\s+ALTER\s+(?:COLUMN\s+)?[\w\"]+\s+SET\s+(?:STATISTICS\s+-?\d+|STORAGE\s+\w+)$", _I),
     "expand:changes planner settings of a column of {name}"),
    (re.compile(r"^(?:CREATE|DROP)\s+STATISTICS\b(?:\s+IF\s+(?:NOT\s+)?EXISTS)?\s+" + _NAME, _I),
     "expand:changes planner statistics {name}"),
]


# Whole statements only: ALTER TABLE takes several actions, and `VALIDATE CONSTRAINT c, DROP COLUMN d`
# must not pass for a validation.
_VALIDATE = re.compile(_TABLE + r"\s+VALIDATE\s+CONSTRAINT\s+(?P<constraint>[\w\"]+)$", _I)
_DATA = re.compile(r"^(?:INSERT\s+INTO|UPDATE(?:\s+ONLY)?|DELETE\s+FROM(?:\s+ONLY)?)\s+" + _NAME + r"(?:\s|\(|$)", _I)


def known_statement(statement: str) -> list[Operation] | None:
    """What a statement does when its words say so; None when sqlglot must read it."""
    text = " ".join(statement.split())
    if _NOTHING.match(text):
        return []
    if re.match(r"^(?:SELECT|VALUES)\b", text, _I):
        code = re.sub(r"'(?:[^']|'')*'", "''", text)
        called = {name.rsplit(".", 1)[-1].lower() for name in re.findall(r"([A-Za-z_][\w.]*)\s*\(", code)}
        unknown = sorted(called - _READ_ONLY_FUNCTIONS)
        if unknown:
            return [cannot_tell(f"SELECT calls {', '.join(unknown[:3])}(), which may change the schema")]
        return []
    validate = _VALIDATE.match(text)
    if validate:
        constraint = validate.group("constraint").strip('"').lower()
        return [expand(f"validates constraint {constraint} on {validate.group('name').strip(chr(34))}",
                       subject=("validated", constraint))]
    for pattern, template in _KNOWN:
        match = pattern.match(text)
        if match:
            parts = template.split(":", 2)
            name = match.group("name").strip('"')
            if parts[0] == "expand":
                return [expand(":".join(parts[1:]).format(name=name))]
            return [contract(parts[2].format(name=name), parts[1])]
    data = _DATA.match(text)
    if data:
        table = data.group("name").strip('"')
        return [expand(f"changes rows of {table} (data only, no schema change)", subject=("data", ""))]
    if re.match(r"^DO\b", text, _I):
        return [cannot_tell("a DO block runs procedural code that cannot be read")]
    return None


def command_operation(text: str) -> Operation:
    """A statement sqlglot kept as a raw command and no pattern above knows."""
    return cannot_tell(f"statement not understood ({' '.join(text.split())[:60]})")
