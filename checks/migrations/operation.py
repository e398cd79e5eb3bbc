"""The unit every classifier returns: one schema change and whether it is expand or contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["expand", "contract"]
EXPAND: Kind = "expand"
CONTRACT: Kind = "contract"


@dataclass(frozen=True)
class Operation:
    kind: Kind
    what: str  # a human phrase: "drops column users.email"
