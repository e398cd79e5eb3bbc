"""Which changed paths are migrations: the built-in framework layouts plus configured globs."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Iterable


def _glob_regex(pattern: str) -> re.Pattern:
    """A path glob where `*` stays inside one directory and `**/` spans any number of them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


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
    globs = [_glob_regex(g.lstrip("/")) for g in extra_globs]
    found: list[str] = []
    for path in changed_paths:
        clean = path.lstrip("/")
        if path not in found and (_framework_of(clean) or any(g.match(clean) for g in globs)):
            found.append(path)
    return found
