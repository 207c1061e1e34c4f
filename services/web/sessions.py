"""Server-side sessions: the browser holds only a random id in a cookie (HttpOnly, SameSite=Lax,
Secure over TLS); the tokens, the CSRF token and the last outcome stay on the server.

Where a database is configured (CASEWORK_DATABASE_URL) they are kept in PostgreSQL, in the web's
own schema `web` (migrations in `services/web/migrations`), so every instance of the web honours
every session and a restart signs nobody out: a session's row is found by the SHA-256 of its id
(the table holds no cookie value), and everything in it (the identity provider's tokens, the CSRF
token, the outcome to show, names found) is sealed with Fernet under CASEWORK_WEB_SESSION_KEY
(several keys, comma-separated: the first seals, any opens, for rotation). The pending sign-ins
(PKCE verifier, state, nonce) likewise, taken once by whichever instance the provider returns the
browser to. A session unused for `session_idle_seconds` is refused and deleted.

Without a database the sessions are in the process's memory (`MemorySessions`): one instance
only, and a person signs in again after a restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.dialects.postgresql import BYTEA
from sqlalchemy.ext.asyncio import AsyncEngine

from services.shared.identity import Principal
from services.web.signin import Started, Tokens

COOKIE = "casework_session"
PENDING_SECONDS = 600.0  # a sign-in not finished within this is forgotten
SCHEMA = "web"
# A session's last use is written again only when older than this (not on every request: the
# header's unread count polls); idle expiry is therefore exact to within this many seconds.
TOUCH_SECONDS = 30.0

metadata = sa.MetaData(schema=SCHEMA)
sessions_table = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.Text, primary_key=True),  # SHA-256 of the cookie's session id
    sa.Column("sealed", BYTEA, nullable=False),  # Fernet: tokens, CSRF token, flash, names
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)
sign_ins_table = sa.Table(
    "sign_ins",
    metadata,
    sa.Column("state_hash", sa.Text, primary_key=True),  # SHA-256 of the sign-in's state
    sa.Column("sealed", BYTEA, nullable=False),  # Fernet: the verifier, nonce, page after
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass
class Session:
    tokens: Tokens
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    seen_at: float = field(default_factory=time.time)
    flash: dict[str, Any] | None = None  # the outcome shown once on the next page
    worker_names: dict[str, str] = field(default_factory=dict)  # found by name (AL16)
    sid: str = ""
    saved: dict[str, Any] | None = field(default=None, repr=False)  # as last stored

    @property
    def user_id(self) -> str:
        return self.tokens.principal.user_id

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, str(token))

    def dump(self) -> dict[str, Any]:
        p = self.tokens.principal
        return {
            "principal": {
                "user_id": p.user_id,
                "roles": sorted(p.roles),
                "name": p.name,
                "email": p.email,
                "expires_at": p.expires_at,
            },
            "id_token": self.tokens.id_token,
            "refresh_token": self.tokens.refresh_token,
            "expires_at": self.tokens.expires_at,
            "csrf": self.csrf,
            "flash": self.flash,
            "worker_names": dict(self.worker_names),
        }

    @classmethod
    def load(cls, sid: str, data: dict[str, Any], seen_at: float) -> Session:
        p = data["principal"]
        principal = Principal(
            user_id=p["user_id"],
            roles=frozenset(p.get("roles") or ()),
            name=p.get("name"),
            email=p.get("email"),
            expires_at=float(p.get("expires_at") or 0.0),
        )
        tokens = Tokens(
            principal, data["id_token"], data.get("refresh_token"), float(data["expires_at"])
        )
        return cls(
            tokens,
            csrf=data["csrf"],
            seen_at=seen_at,
            flash=data.get("flash"),
            worker_names=dict(data.get("worker_names") or {}),
            sid=sid,
            saved=data,
        )


class SessionStore(Protocol):
    """Where the web keeps sessions and pending sign-ins (memory or PostgreSQL)."""

    kind: str

    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    async def begin(self, started: Started) -> None: ...
    async def returned(self, state: str) -> Started | None: ...
    async def create(self, tokens: Tokens) -> str: ...
    async def get(self, sid: str | None) -> Session | None: ...
    async def save(self, session: Session) -> None: ...
    async def drop(self, sid: str | None) -> None: ...


class MemorySessions:
    """One process's sessions: for a web without a database (one instance, lost on restart)."""

    kind = "memory"

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._pending: dict[str, Started] = {}

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def begin(self, started: Started) -> None:
        now = time.time()
        self._pending = {
            k: v for k, v in self._pending.items() if now - v.started_at < PENDING_SECONDS
        }
        self._pending[started.state] = started

    async def returned(self, state: str) -> Started | None:
        """The sign-in this state was given to, once only."""
        started = self._pending.pop(state, None)
        if started is None or time.time() - started.started_at > PENDING_SECONDS:
            return None
        return started

    async def create(self, tokens: Tokens) -> str:
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = Session(tokens, sid=sid)
        return sid

    async def get(self, sid: str | None) -> Session | None:
        session = self._sessions.get(sid or "")
        if session is None:
            return None
        if time.time() - session.seen_at > self.idle_seconds:
            await self.drop(sid)
            return None
        session.seen_at = time.time()
        return session

    async def save(self, session: Session) -> None:
        return None  # the session object itself is the stored one

    async def drop(self, sid: str | None) -> None:
        self._sessions.pop(sid or "", None)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def sealer(keys: str) -> MultiFernet:
    """Fernet keys, comma-separated: the first seals, every one opens (rotation)."""
    found = [k.strip() for k in keys.split(",") if k.strip()]
    if not found:
        raise ValueError(
            "CASEWORK_WEB_SESSION_KEY is not set: the sessions' tokens are sealed with it "
            "(generate one with python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
    return MultiFernet([Fernet(k.encode()) for k in found])


class DatabaseSessions:
    """Sessions in PostgreSQL (schema `web`), shared by every instance of the web."""

    kind = "database"

    def __init__(self, engine: AsyncEngine, keys: str, idle_seconds: float) -> None:
        self.engine = engine
        self.fernet = sealer(keys)
        self.idle_seconds = idle_seconds

    async def start(self) -> None:
        return None  # the schema is migrated by the web at start (app.py)

    async def aclose(self) -> None:
        await self.engine.dispose()

    def _seal(self, data: dict[str, Any]) -> bytes:
        return self.fernet.encrypt(json.dumps(data, separators=(",", ":")).encode())

    def _open(self, sealed: bytes) -> dict[str, Any] | None:
        try:
            found = json.loads(self.fernet.decrypt(bytes(sealed)))
        except (InvalidToken, ValueError):
            return None  # sealed under a key no longer given: as if signed out
        return found if isinstance(found, dict) else None

    async def begin(self, started: Started) -> None:
        now = datetime.now(UTC)
        sealed = self._seal(
            {"nonce": started.nonce, "verifier": started.verifier, "after": started.after}
        )
        t = sign_ins_table
        async with self.engine.begin() as conn:
            await conn.execute(
                t.delete().where(t.c.started_at < now - timedelta(seconds=PENDING_SECONDS))
            )
            await conn.execute(
                t.insert().values(
                    state_hash=_hash(started.state),
                    sealed=sealed,
                    started_at=datetime.fromtimestamp(started.started_at, UTC),
                )
            )

    async def returned(self, state: str) -> Started | None:
        """The sign-in this state was given to, once only (whichever instance began it)."""
        if not state:
            return None
        t = sign_ins_table
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    t.delete()
                    .where(t.c.state_hash == _hash(state))
                    .returning(t.c.sealed, t.c.started_at)
                )
            ).first()
        if row is None:
            return None
        started_at = row.started_at.timestamp()
        data = self._open(row.sealed)
        if data is None or time.time() - started_at > PENDING_SECONDS:
            return None
        return Started(state, data["nonce"], data["verifier"], data["after"], started_at)

    async def create(self, tokens: Tokens) -> str:
        sid = secrets.token_urlsafe(32)
        session = Session(tokens, sid=sid)
        now = datetime.now(UTC)
        t = sessions_table
        async with self.engine.begin() as conn:
            await conn.execute(
                t.delete().where(t.c.seen_at < now - timedelta(seconds=self.idle_seconds))
            )
            await conn.execute(
                t.insert().values(
                    id_hash=_hash(sid),
                    sealed=self._seal(session.dump()),
                    created_at=now,
                    seen_at=now,
                )
            )
        return sid

    async def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        t = sessions_table
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.c.sealed, t.c.seen_at).where(t.c.id_hash == _hash(sid))
                )
            ).first()
        if row is None:
            return None
        now = datetime.now(UTC)
        if now - row.seen_at > timedelta(seconds=self.idle_seconds):
            await self.drop(sid)
            return None
        data = self._open(row.sealed)
        if data is None:
            return None
        seen_at = row.seen_at
        if now - seen_at > timedelta(seconds=TOUCH_SECONDS):
            async with self.engine.begin() as conn:
                await conn.execute(t.update().where(t.c.id_hash == _hash(sid)).values(seen_at=now))
            seen_at = now
        return Session.load(sid, data, seen_at.timestamp())

    async def save(self, session: Session) -> None:
        """Writes the session back if the request changed it (tokens refreshed, an outcome
        to show or shown, names found)."""
        data = session.dump()
        if data == session.saved or not session.sid:
            return
        t = sessions_table
        async with self.engine.begin() as conn:
            await conn.execute(
                t.update().where(t.c.id_hash == _hash(session.sid)).values(sealed=self._seal(data))
            )
        session.saved = data

    async def drop(self, sid: str | None) -> None:
        if not sid:
            return
        t = sessions_table
        async with self.engine.begin() as conn:
            await conn.execute(t.delete().where(t.c.id_hash == _hash(sid)))
