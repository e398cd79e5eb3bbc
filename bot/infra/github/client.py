"""The PyGithub adapter behind GitHost.

Every call goes through one tenacity policy (bot.retry's `github_api`): PyGithub's own retry is
off so there is exactly one place that decides to wait. PyGithub errors become ours, and no
PyGithub object leaves the package: callers get the frozen dataclasses of bot.domain.github.

The adapter is put together from its parts: auth (token, App JWT, installation tokens), base
(clients, retries, spaced writes, the bot's login), checks, deployments and pulls.
"""

from __future__ import annotations

from bot.infra.github.auth import (
    DEFAULT_API_URL,
    JWT_BACKDATE,
    JWT_LIFETIME,
    TOKEN_REFRESH_MARGIN,
    GitHubConfig,
    InstallationTokenAuth,
    app_jwt,
)
from bot.infra.github.base import WriteSpacer
from bot.infra.github.checks import OWN_CHECK_PREFIX, ChecksMixin
from bot.infra.github.deployments import DeploymentsMixin
from bot.infra.github.errors import SECONDARY_LIMIT_WAIT, GitHubRequestError, translate, translate_response
from bot.infra.github.pulls import MERGE_SUBJECT, SQUASH_SUBJECT, PullsMixin

__all__ = [
    "DEFAULT_API_URL", "JWT_BACKDATE", "JWT_LIFETIME", "MERGE_SUBJECT", "OWN_CHECK_PREFIX",
    "SECONDARY_LIMIT_WAIT", "SQUASH_SUBJECT", "TOKEN_REFRESH_MARGIN", "GitHubAdapter", "GitHubConfig",
    "GitHubRequestError", "InstallationTokenAuth", "WriteSpacer", "app_jwt", "translate", "translate_response",
]


class GitHubAdapter(ChecksMixin, DeploymentsMixin, PullsMixin):
    """GitHost over PyGithub."""
