"""What the store's mixins share: a session to work in, and the rows an UPDATE touched."""

from __future__ import annotations

import contextlib
from typing import cast

from sqlalchemy import CursorResult, Result
from sqlalchemy.orm import Session


class SessionSource:
    """A part of bot.infra.db.store.Store, which provides `session()`."""

    def session(self) -> contextlib.AbstractContextManager[Session]:  # pragma: no cover - Store's
        raise NotImplementedError


def rowcount(result: Result) -> int:
    # Session.execute is typed as returning a plain Result; an UPDATE's is a CursorResult.
    return cast(CursorResult, result).rowcount
