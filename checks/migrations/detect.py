"""Which changed paths are migrations: the built-in framework layouts plus configured globs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from bot.globs import compile_glob


def _framework_of(path: str) -> str | None:
    p = PurePosixPath(path)
    parent = p.parent.name
    if p.suffix == ".py" and p.name != "__init__.py":
        if parent == "versions":
            return "alembic"
        # Flask-Migrate keeps Alembic's env.py in a `migrations/` folder too.
        if parent == "migrations" and p.name != "env.py":
            return "django"
    if p.suffix == ".rb" and p.parent.parts[-2:] == ("db", "migrate"):
        return "rails"
    if p.suffix == ".sql" and re.match(r"^V[^_]*__.+\.sql$", p.name):
        return "flyway"
    return None


def detect_migrations(changed_paths: Iterable[str], extra_globs: Iterable[str] = ()) -> list[str]:
    """The changed paths that are migrations: Django `*/migrations/*.py` (not `__init__`),
    Alembic `versions/*.py`, Rails `db/migrate/*.rb`, Flyway `V*__*.sql`, and `extra_globs`."""
    # Globs come from the repository's config: matched in linear time (bot/globs.py), never as
    # regexes, which `**a**a…` drives into exponential backtracking.
    globs = [compile_glob(g.lstrip("/"), paths=True) for g in extra_globs]
    found: list[str] = []
    for path in changed_paths:
        clean = path.lstrip("/")
        if path not in found and (_framework_of(clean) or any(g.match(clean) for g in globs)):
            found.append(path)
    return found
