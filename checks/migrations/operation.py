"""The unit every classifier returns: one schema change and whether it is expand or contract."""

from __future__ import annotations

from dataclasses import dataclass

EXPAND, CONTRACT = "expand", "contract"


@dataclass(frozen=True)
class Operation:
    kind: str  # expand | contract
    what: str  # a human phrase: "drops column users.email"
