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


def cannot_tell(what: str) -> Operation:
    """An operation that cannot be read: contract, never expand."""
    return Operation(CONTRACT, f"cannot tell: {what}", CANNOT_TELL)


def settle(ops: list[Operation]) -> list[Operation]:
    """A default dropped and set back on the same column within one migration leaves the column
    with a default, as the running release expects: the drop is then expand."""
    settled = list(ops)
    for i, op in enumerate(settled):
        if op.kind != CONTRACT or op.subject is None or op.subject[0] != "drop-default":
            continue
        column = op.subject[1]
        if any(later.subject == ("set-default", column) for later in settled[i + 1:]):
            settled[i] = replace(op, kind=EXPAND, rule="",
                                 what=f"{op.what.split(',')[0]}, and sets one back in the same migration")
    return settled
