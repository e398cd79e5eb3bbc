"""GitHub Apps in the stand-in, as strict as GitHub: an App's key pair and JWT, its installations
and the permissions each was granted, installation tokens that expire, personal tokens that may
not write check runs, and which credential may read a private repository over git.

A token the stand-in neither issued nor was given (`sandbox.tokens`, `apps.personal`) keeps the
old leniency: it acts as the default app's bot with every permission, so tests that never set
up an App still run. Everything an App registered here does is held to GitHub's rules.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .github_api import SandboxError

# GitHub's answers, word for word.
PAT_REFUSED = "Resource not accessible by personal access token"
APP_REFUSED = "Resource not accessible by integration"
LEVELS = {"read": 1, "write": 2, "admin": 3}

_ids = itertools.count(100_001)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class App:
    """A registered GitHub App: who it is, what it may ask for, and the public half of its key."""

    slug: str
    name: str
    owner: str
    permissions: dict[str, str]
    events: list[str]
    public_key: str
    url: str = "https://example.com"
    hook_url: str | None = None
    description: str = ""
    id: int = field(default_factory=lambda: next(_ids))
    client_id: str = field(default_factory=lambda: "Iv1." + secrets.token_hex(8))
    client_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    created_at: float = field(default_factory=time.time)

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass
class Installation:
    """An App installed on an account, on all its repositories (None) or on some."""

    app: App
    account: str
    permissions: dict[str, str]
    repositories: set[str] | None = None
    id: int = field(default_factory=lambda: next(_ids))

    def covers(self, full_name: str) -> bool:
        owner = full_name.split("/", 1)[0]
        if owner != self.account:
            return False
        return self.repositories is None or full_name in self.repositories


@dataclass(frozen=True)
class Credential:
    """What the token of a request may do. kind: installation | personal | lenient."""

    kind: str
    login: str
    permissions: dict[str, str] | None = None  # None: everything (personal scopes, lenient)
    installation: Installation | None = None


def new_key_pair() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh 2048-bit RSA key, as GitHub makes for an App."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class Apps:
    """The stand-in's Apps, installations and issued tokens."""

    def __init__(self) -> None:
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.issued: dict[str, tuple[Installation | None, float]] = {}  # token -> (installation, expiry)
        self.personal: dict[str, str] = {}  # personal access token -> login
        self.token_lifetime = 3600.0
        self._lock = threading.Lock()

    # -- set-up (tests, and the manifest flow) -----------------------------------------------

    def register(self, slug: str = "mainline", permissions: dict[str, str] | None = None,
                 events: list[str] | None = None, owner: str = "acme", **details) -> tuple[App, str]:
        """A new App; returns it and its private key PEM (GitHub shows the key once)."""
        private, public = new_key_pair()
        app = App(slug=slug, name=details.pop("name", slug.title()), owner=owner,
                  permissions=dict(permissions or {}), events=list(events or []), public_key=public, **details)
        with self._lock:
            self.apps[app.id] = app
        return app, private

    def install(self, app: App, account: str, repositories: set[str] | None = None,
                permissions: dict[str, str] | None = None) -> Installation:
        """Install `app` on `account`, granting `permissions` (by default all the App asks for)."""
        installation = Installation(app, account, dict(app.permissions if permissions is None else permissions),
                                    repositories)
        with self._lock:
            self.installations[installation.id] = installation
        return installation

    def expire_tokens(self) -> None:
        """Every installation token issued so far stops working, as an hour later on GitHub."""
        with self._lock:
            self.issued = {t: (inst, 0.0) for t, (inst, _) in self.issued.items()}

    # -- what the routes ask -----------------------------------------------------------------

    def app(self, app_id: object) -> App | None:
        try:
            return self.apps.get(int(str(app_id)))
        except ValueError:
            return None

    def issue(self, installation: Installation | None) -> tuple[str, float]:
        token, expires = "ghs_" + secrets.token_urlsafe(27), time.time() + self.token_lifetime
        with self._lock:
            self.issued[token] = (installation, expires)
        return token, expires

    def credential(self, token: str, people: dict[str, str], lenient_login: str) -> Credential:
        """Who `token` is; SandboxError(401) for an installation token that has expired."""
        if token in self.issued:
            installation, expires = self.issued[token]
            if time.time() >= expires:
                raise SandboxError(401, "Bad credentials")
            if installation is None:
                return Credential("lenient", lenient_login)
            return Credential("installation", installation.app.bot_login, installation.permissions, installation)
        if token in self.personal:
            return Credential("personal", self.personal[token])
        if token in people:
            return Credential("personal", people[token])
        return Credential("lenient", lenient_login)

    def installation_for(self, app: App, full_name: str) -> Installation:
        for installation in self.installations.values():
            if installation.app is app and installation.covers(full_name):
                return installation
        raise SandboxError(404, "Not Found")


# -- which permission a REST call needs ------------------------------------------------------

_REPO = r"^/repos/[^/]+/[^/]+"
# (method pattern, path pattern, permission); the level is read for GET, write otherwise.
RULES = [
    (r"POST|PATCH", _REPO + r"/check-runs(/\d+)?$", "checks"),
    (r"GET", _REPO + r"/(commits/.+/)?check-runs", "checks"),
    (r".*", _REPO + r"/statuses/", "statuses"),
    (r"GET", _REPO + r"/commits/.+/status$", "statuses"),
    (r".*", _REPO + r"/deployments", "deployments"),
    (r".*", _REPO + r"/pulls", "pull_requests"),
    (r".*", _REPO + r"/issues", "issues"),
    (r".*", _REPO + r"/(contents|commits|compare|git|merges|branches)(/|$)", "contents"),
]


def needed(method: str, path: str) -> tuple[str, str] | None:
    """The (permission, level) GitHub asks of an App for this call, or None (metadata)."""
    for methods, pattern, permission in RULES:
        if re.fullmatch(methods, method) and re.search(pattern, path):
            return permission, "read" if method in ("GET", "HEAD") else "write"
    return None


def refusal(credential: Credential, method: str, path: str) -> tuple[int, str, dict[str, str]] | None:
    """GitHub's 403 (status, message, headers) when `credential` may not make this call."""
    need = needed(method, path)
    if need is None:
        return None
    permission, level = need
    if credential.kind == "personal" and permission == "checks" and level == "write":
        return 403, PAT_REFUSED, {}
    if credential.kind != "installation" or credential.installation is None:
        return None
    match = re.match(r"^/repos/([^/]+/[^/]+)", path)
    if match and not credential.installation.covers(match.group(1)):
        return 404, "Not Found", {}
    granted = (credential.permissions or {}).get(permission)
    if granted is None or LEVELS.get(granted, 0) < LEVELS[level]:
        return 403, APP_REFUSED, {"X-Accepted-GitHub-Permissions": f"{permission}={level}"}
    return None


def git_allowed(credential: Credential | None, full_name: str, push: bool) -> bool:
    """May this credential read (or push to) a private repository over git?"""
    if credential is None:
        return False
    if credential.kind != "installation" or credential.installation is None:
        return True
    if not credential.installation.covers(full_name):
        return False
    granted = LEVELS.get((credential.permissions or {}).get("contents", ""), 0)
    return granted >= LEVELS["write" if push else "read"]
