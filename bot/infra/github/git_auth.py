"""Which credential git presents, and to whom: only to a repository on the configured GitHub,
and then that repository's own (a GitHub App's installation token for the installation that holds
it, renewed as the API's is). Every other URL gets none."""

from __future__ import annotations

import re
from typing import Protocol

# owner/name as GitHub allows them; nothing that could step out of the path.
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")


class TokenSource(Protocol):
    def git_token(self, repo: str) -> str: ...


class GitCredentials:
    """A GitClient `credentials` callable: clone URL -> token, or None."""

    def __init__(self, web_base: str, source: TokenSource):
        self._prefix = web_base.rstrip("/") + "/"
        self._source = source

    def repo_of(self, clone_url: str) -> str | None:
        if not clone_url.startswith(self._prefix) or not clone_url.endswith(".git"):
            return None
        repo = clone_url[len(self._prefix):-len(".git")]
        return repo if _REPO.fullmatch(repo) and ".." not in repo else None

    def __call__(self, clone_url: str) -> str | None:
        repo = self.repo_of(clone_url)
        return self._source.git_token(repo) if repo is not None else None


def credentials_for(settings, github: TokenSource | None) -> GitCredentials | None:
    """With a GitHub App configured (GITHUB_TOKEN or not), git presents each repository's
    installation token, only to that repository on the configured GitHub; None otherwise
    (GITHUB_TOKEN alone, or no GitHub), and git goes with the token as before."""
    if github is None or settings.github_app_id is None or settings.github_app_private_key is None:
        return None
    return GitCredentials(settings.github_web_base(), github)
