"""The web's sessions kept in PostgreSQL (schema `web`): a sign-in begun on one instance and
finished on another, the session then honoured by both; a session unused for the idle time
refused; the identity provider's tokens sealed (never in clear in the table); signing out ends
the session on every instance. Two web app objects over one database, driven over ASGI (no
browser)."""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from services.shared.settings import Settings
from services.web.app import Web
from services.web.sessions import COOKIE, DatabaseSessions, sessions_table
from services.web.settings import WebSettings

PUBLIC = "http://web.test"
KEY = Fernet.generate_key().decode()


class Instance:
    def __init__(self, web: Web) -> None:
        self.web = web
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=web.asgi(manage_lifecycle=False)), base_url=PUBLIC
        )

    @property
    def store(self) -> DatabaseSessions:
        assert isinstance(self.web.sessions, DatabaseSessions)
        return self.web.sessions


@pytest.fixture
async def instances(settings_for: Callable[..., Settings]) -> AsyncIterator[list[Instance]]:
    """Two instances of the web over one database, as two pods behind one Service."""
    made = []
    for _ in range(2):
        web = Web(settings_for("web"), WebSettings(public_url=PUBLIC, session_key=KEY))
        await web.start()
        made.append(Instance(web))
    yield made
    for instance in made:
        await instance.http.aclose()
        await instance.web.aclose()


async def sign_in(begin: Instance, finish: Instance, user_id: str) -> str:
    sid, _ = await sign_in_answer(begin, finish, user_id)
    return sid


async def sign_in_answer(begin: Instance, finish: Instance, user_id: str) -> tuple[str, str]:
    """Begun on one instance, the provider's page answered, the return taken by another."""
    started = await begin.http.get("/sign-in", params={"next": "/teams"})
    assert started.status_code == 303
    provider = httpx.AsyncClient(timeout=10.0)
    try:
        answered = await provider.post(started.headers["location"], data={"sub": user_id})
    finally:
        await provider.aclose()
    assert answered.status_code in (302, 303), answered.text
    back = urllib.parse.urlsplit(answered.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{PUBLIC}/signed-in"
    returned = await finish.http.get(f"/signed-in?{back.query}")
    assert returned.status_code == 303, returned.text
    assert returned.headers["location"] == "/teams"
    sid = returned.cookies.get(COOKIE)
    assert sid
    return sid, back.query


async def signed_in(instance: Instance, sid: str) -> bool:
    """`/` sends a signed-in person to the team summary, anyone else to sign in."""
    answer = await instance.http.get("/", cookies={COOKIE: sid})
    assert answer.status_code == 303
    return str(answer.headers["location"]) == "/teams"


async def rows(instance: Instance, table: sa.Table) -> list[Any]:
    async with instance.store.engine.connect() as conn:
        return list((await conn.execute(sa.select(table))).all())


async def test_a_session_made_on_one_instance_is_honoured_by_another(
    instances: list[Instance],
) -> None:
    a, b = instances
    assert a.store.kind == b.store.kind == "database"
    # The provider may return the browser to either instance.
    sid, answer = await sign_in_answer(a, b, "so-hub")
    assert await signed_in(a, sid) and await signed_in(b, sid)
    assert not await signed_in(a, "a-made-up-session-id")
    session = await a.store.get(sid)
    assert session is not None and session.user_id == "so-hub"
    # The pending sign-in is taken once: the same answer cannot be replayed on either.
    for instance in (a, b):
        replayed = await instance.http.get(f"/signed-in?{answer}")
        assert replayed.status_code == 400 and COOKIE not in replayed.cookies
    # A CSRF token from the session made on b signs out on a; b then refuses it too.
    signed_out = await a.http.post(
        "/sign-out", data={"csrf_token": session.csrf}, cookies={COOKIE: sid}
    )
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/signed-out"
    assert not await signed_in(b, sid) and not await signed_in(a, sid)


async def test_an_outcome_written_on_one_instance_is_read_on_another(
    instances: list[Instance],
) -> None:
    a, b = instances
    sid = await sign_in(a, a, "so-north")
    on_a = await a.store.get(sid)
    assert on_a is not None
    on_a.flash = {"done": True, "title": "Assigned", "lines": ["to Sam"], "rule": None}
    on_a.worker_names["pos-1"] = "Sam"
    await a.store.save(on_a)
    on_b = await b.store.get(sid)
    assert on_b is not None
    assert on_b.flash == on_a.flash and on_b.worker_names == {"pos-1": "Sam"}
    assert on_b.csrf == on_a.csrf and on_b.tokens == on_a.tokens


async def test_an_idle_session_is_refused_and_forgotten(instances: list[Instance]) -> None:
    a, b = instances
    sid = await sign_in(a, b, "so-hub")
    assert await signed_in(b, sid)
    idle = a.web.web.session_idle_seconds
    async with a.store.engine.begin() as conn:  # its last use, the idle time and a second ago
        await conn.execute(
            sessions_table.update()
            .where(sessions_table.c.id_hash == hashlib.sha256(sid.encode()).hexdigest())
            .values(seen_at=sa.func.now() - sa.text(f"interval '{int(idle) + 1} seconds'"))
        )
    assert not await signed_in(b, sid)
    assert await a.store.get(sid) is None
    hashes = {r.id_hash for r in await rows(a, sessions_table)}
    assert hashlib.sha256(sid.encode()).hexdigest() not in hashes, "an idle session is deleted"


async def test_the_providers_tokens_are_not_kept_in_clear(instances: list[Instance]) -> None:
    a, b = instances
    sid = await sign_in(a, b, "so-hub")
    session = await b.store.get(sid)
    assert session is not None
    id_token, refresh = session.tokens.id_token, session.tokens.refresh_token
    assert id_token and refresh
    own = hashlib.sha256(sid.encode()).hexdigest()
    stored = [r for r in await rows(a, sessions_table) if r.id_hash == own]
    assert stored, "the session is a row in the web's schema"
    sealed = bytes(stored[0].sealed)
    for secret in (id_token, refresh, session.csrf, sid, "so-hub"):
        assert secret.encode() not in sealed
    opened = Fernet(KEY.encode()).decrypt(bytes(stored[0].sealed))
    assert id_token.encode() in opened, "sealed with the session key"
    # Another key opens nothing: the session is as if signed out.
    other = DatabaseSessions(a.store.engine, Fernet.generate_key().decode(), 60.0)
    assert await other.get(sid) is None
