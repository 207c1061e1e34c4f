"""Notifications' read API: a user's in-app inbox (list, unread count, mark read) and, for
operators, deliveries by status (parked ones to replay) and the reminder schedule."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.notifications import store

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


INBOX_COLUMNS = ["delivery_id", "kind", "rule", "subject", "body", "data", "created_at", "read_at"]


def _limit(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("limit", "100")), 1000))
    except ValueError:
        return 100


def _inbox_of(user_id: str) -> Any:
    return sa.and_(d.c.recipient_id == user_id, d.c.channel == "inbox")


async def inbox(request: Request) -> Response:
    """GET /users/{user_id}/inbox[?unread=true&limit=n]: newest first."""
    user_id = request.path_params["user_id"]
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
    user_id = request.path_params["user_id"]
    async with request.app.state.engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).where(_inbox_of(user_id), d.c.read_at.is_(None))
        )
    return JSONResponse({"user_id": user_id, "unread": int(count or 0)})


async def mark_read(request: Request) -> Response:
    """POST /users/{user_id}/inbox/read with {"notification_ids": [...]} (none: all)."""
    user_id = request.path_params["user_id"]
    try:
        body = await request.json() if await request.body() else {}
        ids = [uuid.UUID(str(i)) for i in body.get("notification_ids", [])]
    except (ValueError, AttributeError):
        return JSONResponse({"error": "notification_ids must be a list of UUIDs"}, 400)
    query = d.update().where(_inbox_of(user_id), d.c.read_at.is_(None))
    if ids:
        query = query.where(d.c.delivery_id.in_(ids))
    async with request.app.state.engine.begin() as conn:
        result = await conn.execute(query.values(read_at=sa.func.now()))
    return JSONResponse({"user_id": user_id, "marked": int(result.rowcount or 0)})


async def deliveries(request: Request) -> Response:
    """GET /deliveries?status=parked[&channel=email&recipient_id=...]: for operators."""
    query = sa.select(d).order_by(d.c.created_at, d.c.delivery_id).limit(_limit(request))
    for name in ("status", "channel", "recipient_id", "kind"):
        if value := request.query_params.get(name):
            query = query.where(d.c[name] == value)
    async with request.app.state.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return JSONResponse({"deliveries": _rows(rows)})


async def reminders(request: Request) -> Response:
    """GET /reminders[?user_id=...&status=pending]: the schedule (NT04, NT05)."""
    r = store.reminders
    query = sa.select(r).order_by(r.c.due_at).limit(_limit(request))
    for name in ("user_id", "status", "series"):
        if value := request.query_params.get(name):
            query = query.where(r.c[name] == value)
    async with request.app.state.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return JSONResponse({"reminders": _rows(rows)})


routes = [
    Route("/users/{user_id}/inbox", inbox),
    Route("/users/{user_id}/inbox/unread-count", unread_count),
    Route("/users/{user_id}/inbox/read", mark_read, methods=["POST"]),
    Route("/deliveries", deliveries),
    Route("/reminders", reminders),
]
