"""The unit every classifier returns: one schema change, whether it is expand or contract, and,
for a contract one, the rule it breaks (named like squawk's and strong_migrations' rules)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Kind = Literal["expand", "contract"]
EXPAND: Kind = "expand"
CONTRACT: Kind = "contract"

# What a classifier could not see is never called safe: it is this rule, and contract.
CANNOT_TELL = "cannot-tell"


@dataclass(frozen=True)
class Operation:
    kind: Kind
    what: str  # a human phrase: "drops column users.email"
    rule: str = ""  # the rule a contract operation breaks, e.g. "ban-drop-column"
    # What a later operation may undo within the same migration: ("default", "users.plan").
    subject: tuple[str, str] | None = None


def contract(what: str, rule: str, subject: tuple[str, str] | None = None) -> Operation:
    return Operation(CONTRACT, what, rule, subject)


def expand(what: str, subject: tuple[str, str] | None = None) -> Operation:
    return Operation(EXPAND, what, "", subject)


def generated_column(column: str, primary: bool, numbered: bool) -> Operation | None:
    """A column added to an existing table that numbers itself: every row is filled (and, for a
    primary key, indexed) under an exclusive lock. None for any other column."""
    if primary:
        return contract(f"adds primary key column {column} to an existing table, which fills every row and "
                        "builds its index under an exclusive lock", "adding-serial-primary-key-field")
    if numbered:
        return contract(f"adds auto-numbered column {column} to an existing table, which rewrites it under an "
                        "exclusive lock", "adding-identity-column")
    return None


def cannot_tell(what: str) -> Operation:
    """An operation that cannot be read: contract, never expand."""
    return Operation(CONTRACT, f"cannot tell: {what}", CANNOT_TELL)


_ALTERS = {"drop-default", "set-not-null", "set-default", "needs-default"}


def _changes_schema(op: Operation) -> bool:
    neutral = ("no schema change", "runs no code", "does nothing")
    return (op.subject is None or op.subject[0] != "data") and not any(word in op.what for word in neutral)


def settle(ops: list[Operation], transactional: bool = True, backfill_locks: bool = False) -> list[Operation]:
    """What one migration does as a whole, read in order (subjects name what an operation touches):

    - a default dropped and set back on the same column leaves it with a default: both expand,
      and so is a field added with a Python default then given it in the database (AddDefaultValue);
      a default set on a column added earlier in the same migration is expand too;
    - SET NOT NULL after a `CHECK (col IS NOT NULL)` constraint added NOT VALID and validated in
      the same migration takes no long lock, and the check already holds: expand
      (("not-valid", "<constraint>|<column>") then ("validated", "<constraint>"));
    - but validating a constraint added NOT VALID in the same transaction (`transactional`) keeps
      the add's lock while every row is checked: contract;
    - changing rows in the same transaction as a schema change (`backfill_locks`: Rails without
      disable_ddl_transaction!, Django unless atomic = False) holds the schema change's lock for
      the whole backfill: contract (strong_migrations: backfill in a separate migration)."""
    settled = list(ops)
    added: set[str] = set()
    not_valid: dict[str, str] = {}  # constraint -> the column its CHECK (... IS NOT NULL) covers, or ""
    validated: set[str] = set()  # columns whose NOT NULL check was validated
    dropped: set[str] = set()  # columns whose default was dropped
    for i, op in enumerate(settled):
        kind, key = op.subject if op.subject is not None else ("", "")
        if kind == "add-column" and op.kind == EXPAND:
            added.add(key)
        elif kind == "not-valid":
            name, _, column = key.partition("|")
            not_valid[name] = column
        elif kind == "validated" and key in not_valid:
            if transactional:
                settled[i] = replace(op, kind=CONTRACT, rule="constraint-missing-not-valid",
                                     what=f"{op.what} in the same transaction that added it NOT VALID, so the "
                                          "add's lock is held while every row is checked")
            elif not_valid[key]:
                validated.add(not_valid[key])
        elif kind == "drop-default":
            dropped.add(key)
        if op.kind != CONTRACT or kind not in _ALTERS:
            continue
        if kind == "drop-default" and any(later.subject == ("set-default", key) for later in settled[i + 1:]):
            settled[i] = replace(op, kind=EXPAND, rule="",
                                 what=f"{op.what.split(',')[0]}, and sets one back in the same migration")
        elif kind == "set-default" and (key in dropped or key in added):
            settled[i] = replace(op, kind=EXPAND, rule="", what=f"{op.what.split(',')[0]}"
                                 + (" (set back after dropping it)" if key in dropped else " (a new column)"))
        elif kind == "needs-default" and any(later.subject == ("set-default", key) for later in settled[i + 1:]):
            settled[i] = replace(op, kind=EXPAND, rule="", what=f"{op.what.split(' NOT NULL')[0]} NOT NULL, with "
                                                                "its default set in the database by a later operation")
        elif kind == "set-not-null" and key in validated:
            settled[i] = replace(op, kind=EXPAND, rule="",
                                 what=f"{op.what} after validating a CHECK (... IS NOT NULL) constraint")
    if backfill_locks and any(_changes_schema(op) for op in settled):
        settled = [replace(op, kind=CONTRACT, rule="backfill-in-schema-migration",
                           what=f"{op.what.split(' (data')[0]} in the same transaction as a schema change, which "
                                "holds that change's lock for the whole backfill")
                   if op.subject == ("data", "") else op for op in settled]
    return settled
