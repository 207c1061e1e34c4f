"""Server-side sessions: the browser holds only a random id in a cookie (HttpOnly, SameSite=Lax,
Secure over TLS); the tokens, the CSRF token and the last outcome stay here. One process keeps
them in memory: a person signs in again after a restart."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from services.web.signin import Started, Tokens

COOKIE = "casework_session"
PENDING_SECONDS = 600.0  # a sign-in not finished within this is forgotten


@dataclass
class Session:
    tokens: Tokens
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    seen_at: float = field(default_factory=time.time)
    flash: dict[str, Any] | None = None  # the outcome shown once on the next page
    worker_names: dict[str, str] = field(default_factory=dict)  # found by name (AL16)

    @property
    def user_id(self) -> str:
        return self.tokens.principal.user_id

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, str(token))


class Sessions:
    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._pending: dict[str, Started] = {}

    def begin(self, started: Started) -> None:
        now = time.time()
        self._pending = {
            k: v for k, v in self._pending.items() if now - v.started_at < PENDING_SECONDS
        }
        self._pending[started.state] = started

    def returned(self, state: str) -> Started | None:
        """The sign-in this state was given to, once only."""
        started = self._pending.pop(state, None)
        if started is None or time.time() - started.started_at > PENDING_SECONDS:
            return None
        return started

    def create(self, tokens: Tokens) -> str:
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = Session(tokens)
        return sid

    def get(self, sid: str | None) -> Session | None:
        session = self._sessions.get(sid or "")
        if session is None:
            return None
        if time.time() - session.seen_at > self.idle_seconds:
            self.drop(sid)
            return None
        session.seen_at = time.time()
        return session

    def drop(self, sid: str | None) -> None:
        self._sessions.pop(sid or "", None)
