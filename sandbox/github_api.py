"""What every REST route of the GitHub stand-in shares: who calls, the request body, the answer and
its errors, paging, and the refusals GitHub answers with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

from flask import Response, g, request

from .github_git import CommitInfo
from .github_state import Repo

# Who the stand-in believes is calling: a bot token acts as the app's bot user.
APP_SLUG = "mainline"
BOT_LOGIN = f"{APP_SLUG}[bot]"
DOCS = "https://docs.github.com/rest"

T = TypeVar("T")


class SandboxError(Exception):
    """A request the stand-in refuses, with the status GitHub would answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Body(dict):
    def __missing__(self, key: str) -> NoReturn:
        raise SandboxError(422, f'Invalid request.\n\n"{key}" wasn\'t supplied.')


def caller() -> str:
    """The login behind the request's token."""
    return g.get("login") or BOT_LOGIN


def body() -> dict[str, Any]:
    """The JSON request body; a missing required field answers 422 as GitHub does."""
    data = request.get_json(silent=True, force=True)
    return _Body(data if isinstance(data, dict) else {})


def ok(payload: object, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def error(status: int, message: str) -> Response:
    answer: dict[str, object] = {"message": message, "documentation_url": DOCS}
    if status == 422:
        answer["errors"] = []
    return Response(json.dumps(answer), status=status, mimetype="application/json")


def page(items: list[T]) -> list[T]:
    """The slice of `items` that `per_page` and `page` ask for (GitHub's defaults: 30, page 1)."""
    per_page = int(request.args.get("per_page", 30))
    number = int(request.args.get("page", 1))
    return items[(number - 1) * per_page: number * per_page]


def found(items: Mapping[int, T], key: int) -> T:
    """`items[key]`, or the 404 GitHub answers for an id it does not know."""
    item = items.get(key)
    if item is None:
        raise SandboxError(404, "Not Found")
    return item


def commit_or_404(repo: Repo, ref: str) -> CommitInfo:
    sha = repo.git.resolve(ref)
    if sha is None:
        raise SandboxError(404 if len(ref) != 40 else 422, f"No commit found for SHA: {ref}")
    return repo.git.commit(sha)
