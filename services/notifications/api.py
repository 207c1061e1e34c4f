"""Notifications' read API (TR05: every request needs a valid sign-in token).

- `GET /me/inbox`, `GET /me/inbox/unread-count`, `POST /me/inbox/read`: the signed-in user's
  own in-app inbox; the user comes from the token, never from the request.
- `GET /deliveries`, `GET /reminders`: delivery records (parked ones to replay; e-mail addresses
  and bodies) and the reminder schedule, for the operator role (403 otherwise).
- `GET /webhooks`: the webhook registrations without their secrets, for integration
  administrators (TR06)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.notifications import store
from services.shared.guard import HttpRefusal, json_body, signed_in, with_role
from services.shared.identity import AppRole

d = store.deliveries


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _rows(rows: Any, columns: list[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        values = dict(r._mapping)
        out.append({k: _plain(v) for k, v in values.items() if columns is None or k in columns})
    return out


MAX_MARKED = 1000
INBOX_COLUMNS = ["delivery_id", "kind", "rule", "subject", "body", "data", "created_at", "read_at"]


def _limit(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("limit", "100")), 1000))
    except ValueError:
        return 100


def _inbox_of(user_id: str) -> Any:
    return sa.and_(d.c.recipient_id == user_id, d.c.channel == "inbox")


async def inbox(request: Request) -> Response:
    """GET /me/inbox[?unread=true&limit=n]: the signed-in user's notices, newest first
    (TR05: the user comes from the token)."""
    user_id = (await signed_in(request)).user_id
    query = sa.select(d).where(_inbox_of(user_id))
    if request.query_params.get("unread") in {"1", "true", "yes"}:
        query = query.where(d.c.read_at.is_(None))
    query = query.order_by(d.c.created_at.desc(), d.c.delivery_id).limit(_limit(request))
    async with request.app.state.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    items = _rows(rows, INBOX_COLUMNS)
    for item in items:
        item["notification_id"] = item.pop("delivery_id")
    return JSONResponse({"user_id": user_id, "items": items})


async def unread_count(request: Request) -> Response:
    """GET /me/inbox/unread-count."""
    user_id = (await signed_in(request)).user_id
    async with request.app.state.engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).where(_inbox_of(user_id), d.c.read_at.is_(None))
        )
    return JSONResponse({"user_id": user_id, "unread": int(count or 0)})


async def mark_read(request: Request) -> Response:
    """POST /me/inbox/read with a JSON body {"notification_ids": [...]} (none or empty: all):
    marks the signed-in user's own notices only. TR05: the token must be in the Authorization
    header and the body JSON, which a cross-site form can send neither of."""
    user_id = (await signed_in(request)).user_id
    body = await json_body(request)
    try:
        if not isinstance(body, dict):
            raise ValueError("not an object")
        ids = [uuid.UUID(str(i)) for i in body.get("notification_ids") or []]
    except (ValueError, TypeError):
        return JSONResponse(
            {"error": 'the body is {"notification_ids": [UUID, ...]}', "rule": "schema"}, 400
        )
    if len(ids) > MAX_MARKED:
        raise HttpRefusal(413, f"at most {MAX_MARKED} notification ids at once", "TR08")
    query = d.update().where(_inbox_of(user_id), d.c.read_at.is_(None))
    if ids:
        query = query.where(d.c.delivery_id.in_(ids))
    async with request.app.state.engine.begin() as conn:
        result = await conn.execute(query.values(read_at=sa.func.now()))
    return JSONResponse({"user_id": user_id, "marked": int(result.rowcount or 0)})


async def deliveries(request: Request) -> Response:
    """GET /deliveries?status=parked[&channel=email&recipient_id=...]: for operators (TR05:
    e-mail addresses and bodies)."""
    await with_role(request, AppRole.OPERATOR)
    query = sa.select(d).order_by(d.c.created_at, d.c.delivery_id).limit(_limit(request))
    for name in ("status", "channel", "recipient_id", "kind"):
        if value := request.query_params.get(name):
            query = query.where(d.c[name] == value)
    async with request.app.state.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return JSONResponse({"deliveries": _rows(rows)})


async def reminders(request: Request) -> Response:
    """GET /reminders[?user_id=...&status=pending]: the schedule (NT04, NT05), for operators."""
    await with_role(request, AppRole.OPERATOR)
    r = store.reminders
    query = sa.select(r).order_by(r.c.due_at).limit(_limit(request))
    for name in ("user_id", "status", "series"):
        if value := request.query_params.get(name):
            query = query.where(r.c[name] == value)
    async with request.app.state.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return JSONResponse({"reminders": _rows(rows)})


async def webhooks(request: Request) -> Response:
    """GET /webhooks: the registrations and their owners, never their secrets; for integration
    administrators (TR06)."""
    await with_role(request, AppRole.INTEGRATION_ADMIN, "TR06")
    async with request.app.state.engine.connect() as conn:
        rows = await store.list_webhooks(conn, _limit(request))
    return JSONResponse({"webhooks": _rows(rows)})


routes = [
    Route("/me/inbox", inbox),
    Route("/me/inbox/unread-count", unread_count),
    Route("/me/inbox/read", mark_read, methods=["POST"]),
    Route("/deliveries", deliveries),
    Route("/reminders", reminders),
    Route("/webhooks", webhooks),
]
