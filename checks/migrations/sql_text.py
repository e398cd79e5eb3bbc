"""SQL text before any parser: split into statements (comments dropped, quotes and dollar-quoted
bodies kept whole), and the statements sqlglot keeps as raw commands, classified by their words."""

from __future__ import annotations

import re

from checks.migrations.operation import Operation, cannot_tell, contract, expand

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def split_statements(sql: str) -> list[str]:
    """The statements of `sql`, each stripped, comments removed, empty ones dropped. Linear time."""
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
            end = _quote_end(sql, i, ch)
            current.append(sql[i:end])
            i = end
            continue
        if ch == "$":
            tag = _DOLLAR_TAG.match(sql, i)
            if tag:
                close = sql.find(tag.group(0), tag.end())
                end = n if close < 0 else close + len(tag.group(0))
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
    depth, i, n = 0, i, len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _quote_end(sql: str, i: int, quote: str) -> int:
    j, n = i + 1, len(sql)
    while j < n:
        if sql[j] == quote:
            if j + 1 < n and sql[j + 1] == quote:  # '' inside a string
                j += 2
                continue
            return j + 1
        j += 1
    return n


_I = re.IGNORECASE
_NAME = r"(?P<name>[\w.\"]+)"
_TABLE = r"ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?" + _NAME
# (pattern, what it does): None = no schema change at all; a callable builds the operation.
_NOTHING = re.compile(
    r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|SET|RESET|ANALYZE|VACUUM|COMMENT\s+ON"
    r"|GRANT|REVOKE|SELECT|NOTIFY|LISTEN|SHOW|EXPLAIN)\b", _I)
_KNOWN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^ALTER\s+INDEX\s+(?:IF\s+EXISTS\s+)?" + _NAME + r"\s+RENAME\s+TO\b", _I),
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
    (re.compile(_TABLE + r"\s+VALIDATE\s+CONSTRAINT\b", _I), "expand:validates a constraint on {name}"),
    (re.compile(_TABLE + r"\s+ADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:UNIQUE|PRIMARY\s+KEY)\s+USING\s+INDEX\b", _I),
     "expand:attaches an index built beforehand as a constraint on {name}"),
    (re.compile(_TABLE + r"\s+RENAME\s+CONSTRAINT\b", _I), "expand:renames a constraint on {name}"),
    (re.compile(_TABLE + r"\s+ALTER\s+(?:COLUMN\s+)?\S+\s+SET\s+(?:STATISTICS|STORAGE)\b", _I),
     "expand:changes planner settings of a column of {name}"),
    (re.compile(r"^(?:CREATE|DROP)\s+STATISTICS\b(?:\s+IF\s+(?:NOT\s+)?EXISTS)?\s+" + _NAME, _I),
     "expand:changes planner statistics {name}"),
]


def known_statement(statement: str) -> list[Operation] | None:
    """What a statement does when its words say so; None when sqlglot must read it."""
    text = " ".join(statement.split())
    if _NOTHING.match(text):
        return []
    for pattern, template in _KNOWN:
        match = pattern.match(text)
        if match:
            parts = template.split(":", 2)
            name = match.group("name").strip('"')
            if parts[0] == "expand":
                return [expand(":".join(parts[1:]).format(name=name))]
            return [contract(parts[2].format(name=name), parts[1])]
    if re.match(r"^DO\b", text, _I):
        return [cannot_tell("a DO block runs procedural code that cannot be read")]
    return None


def command_operation(text: str) -> Operation:
    """A statement sqlglot kept as a raw command and no pattern above knows."""
    return cannot_tell(f"statement not understood ({' '.join(text.split())[:60]})")
