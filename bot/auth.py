"""Who is asking the dashboard and the API: a signed-in GitHub user (a session cookie) or an API
token (`Authorization: Bearer …`). Only SHA-256 digests of tokens and session ids are stored, so
a copy of the database signs nobody in."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.domain import utcnow
from bot.errors import MainlineError, NotFoundError
from bot.infra.db.models import ApiTokenRow, WebSessionRow

SCOPES = ("read", "deploy")  # deploy includes read
TOKEN_PREFIX = "mlt_"  # recognisable in a leaked log or a secret scanner
SESSION_COOKIE = "mainline_session"
SESSION_TTL = timedelta(hours=12)
# A token's last use is written at most this often: a busy script must not turn reads into writes.
LAST_USED_EVERY = timedelta(minutes=5)
MAX_CREDENTIAL = 512  # longer than any token or session id we hand out


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Someone the request is from; `scope` is what they may do."""

    kind: str  # user | token | public
    name: str
    scope: str  # read | deploy

    def may(self, scope: str) -> bool:
        return scope == "read" or self.scope == "deploy"


class ApiTokens:
    """`mainline tokens create/revoke`, and checking a presented bearer token."""

    def __init__(self, store):
        self.store = store

    def create(self, name: str, scope: str, token: str | None = None) -> str:
        """Store a new token's digest and return the token: the only time anyone sees it."""
        if scope not in SCOPES:
            raise MainlineError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if not name or len(name) > 100:
            raise MainlineError("a token needs a name of 1 to 100 characters")
        token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
        if len(token) < 16 or len(token) > MAX_CREDENTIAL:
            raise MainlineError("a chosen token must be 16 to 512 characters long")
        try:
            with self.store.session() as s:
                # A revoked token's name may be used again; its row has nothing left to refuse.
                s.execute(delete(ApiTokenRow).where(ApiTokenRow.name == name, ApiTokenRow.revoked_at.is_not(None)))
                s.add(ApiTokenRow(name=name, token_hash=digest(token), scope=scope, created_at=utcnow()))
        except IntegrityError:
            raise MainlineError(f"a token named {name!r} (or with that value) already exists; "
                                "revoke it first or choose another name") from None
        return token

    def revoke(self, name: str) -> None:
        with self.store.session() as s:
            row = s.scalars(select(ApiTokenRow).where(ApiTokenRow.name == name)).first()
            if row is None:
                raise NotFoundError(f"no token named {name!r}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()

    def principal(self, token: str) -> Principal | None:
        """Who `token` stands for, or None when it is unknown or revoked."""
        if not token or len(token) > MAX_CREDENTIAL:
            return None
        wanted = digest(token)
        with self.store.session() as s:
            row = s.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == wanted)).first()
            # The lookup is by a digest of the secret, which tells a timer nothing; the constant-time
            # compare is the check that decides.
            if row is None or not hmac.compare_digest(row.token_hash, wanted) or row.revoked_at is not None:
                return None
            now = utcnow()
            if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
                row.last_used_at = now
            return Principal("token", row.name, row.scope)


class WebSessions:
    """Signed-in GitHub users: the cookie holds a random id, the row its SHA-256."""

    def __init__(self, store):
        self.store = store

    def open(self, login: str) -> str:
        session_id = secrets.token_urlsafe(32)
        now = utcnow()
        with self.store.session() as s:
            s.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now))  # keep the table small
            s.add(WebSessionRow(id_hash=digest(session_id), login=login[:100], created_at=now,
                                expires_at=now + SESSION_TTL))
        return session_id

    def principal(self, session_id: str) -> Principal | None:
        if not session_id or len(session_id) > MAX_CREDENTIAL:
            return None
        with self.store.session() as s:
            row = s.get(WebSessionRow, digest(session_id))
            if row is None or row.expires_at <= utcnow():
                return None
            # A GitHub user reads; acting is for deploy tokens, Slack and PR comments.
            return Principal("user", row.login, "read")

    def close(self, session_id: str) -> None:
        if session_id and len(session_id) <= MAX_CREDENTIAL:
            with self.store.session() as s:
                s.execute(delete(WebSessionRow).where(WebSessionRow.id_hash == digest(session_id)))


def bearer(header: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (or GitHub's `token <token>`), else None."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() not in ("bearer", "token"):
        return None
    return value.strip() or None


class Authenticator:
    """The principal of a request, from its bearer token or its session cookie."""

    def __init__(self, store):
        self.tokens = ApiTokens(store)
        self.sessions = WebSessions(store)

    def principal(self, authorization: str | None, cookie: str | None) -> Principal | None:
        token = bearer(authorization)
        if token is not None:
            return self.tokens.principal(token)  # a wrong token is refused, never overruled by a cookie
        if cookie:
            return self.sessions.principal(cookie)
        return None
