"""squawk's findings for SQL, when squawk is installed; nothing otherwise."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from checks.migrations.operation import CONTRACT, EXPAND, Operation

# squawk rules whose finding means the running release breaks or the table locks, and that the
# classifier does not decide itself. The rules it does decide (below) come from its own reading,
# with the exceptions the peers make (a constraint on a table created in the same file, NOT VALID
# then VALIDATE outside a transaction): squawk's finding would only undo them.
_SQUAWK_CONTRACT = {
    "ban-drop-database", "ban-concurrent-index-creation-in-transaction", "ban-truncate-cascade",
    "ban-alter-domain-with-add-constraint", "ban-create-domain-with-constraint",
}
DECIDED_HERE = {
    "adding-not-nullable-field", "adding-required-field", "ban-drop-column", "ban-drop-table",
    "changing-column-type", "renaming-column", "renaming-table", "require-concurrent-index-creation",
    "require-concurrent-index-deletion", "constraint-missing-not-valid", "disallowed-unique-constraint",
    "adding-foreign-key-constraint", "adding-serial-primary-key-field", "adding-field-with-default",
    "require-concurrent-reindex", "require-concurrent-partition-detach", "adding-primary-key-constraint",
    "ban-drop-not-null",
}
_SQUAWK_LINE = re.compile(r"^\S*:\d+:\d+:\s*(?:warning|error):\s*(?P<rule>[a-z0-9-]+)", re.MULTILINE)


def squawk_operations(sql: str) -> list[Operation]:
    """squawk's findings for PostgreSQL SQL; nothing when squawk is not on PATH."""
    squawk = shutil.which("squawk")
    if squawk is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "migration.sql")
        path.write_text(sql)
        try:
            done = subprocess.run([squawk, str(path)], check=False, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return []
    return parse_squawk_output(done.stdout)


def parse_squawk_output(output: str) -> list[Operation]:
    """`file:line:col: warning: rule-name` lines from squawk's text reporter."""
    ops = []
    for match in _SQUAWK_LINE.finditer(output):
        rule = match.group("rule")
        if rule in DECIDED_HERE:
            continue
        contract = rule in _SQUAWK_CONTRACT
        ops.append(Operation(CONTRACT if contract else EXPAND, f"squawk: {rule}", rule if contract else ""))
    return ops
