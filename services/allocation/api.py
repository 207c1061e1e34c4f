"""Allocation's read API (JSON over HTTP)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.allocation import store


def _json(rows: Any) -> Any:
    return [{k: _plain(v) for k, v in dict(r._mapping).items()} for r in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


async def get_work_item(request: Request) -> Response:
    try:
        work_item_id = uuid.UUID(request.path_params["work_item_id"])
    except ValueError:
        return JSONResponse({"error": "work item id must be a UUID"}, status_code=400)
    async with request.app.state.engine.connect() as conn:
        row = await store.work_item(conn, work_item_id)
    if row is None:
        return JSONResponse({"error": "no such work item"}, status_code=404)
    return JSONResponse({k: _plain(v) for k, v in row.items()})


async def team_work(request: Request) -> Response:
    team = request.path_params["team"]
    t = store.work_items
    async with request.app.state.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(t)
                .where(t.c.owner_kind == "team", t.c.owner_id == team)
                .order_by(t.c.created_at)
            )
        ).all()
    items = _json(rows)
    return JSONResponse(
        {
            "team": team,
            "incoming_work": [i for i in items if i["state"] == "incoming"],
            "incomplete_work": [i for i in items if i["state"] == "incomplete"],
        }
    )


routes = [
    Route("/work-items/{work_item_id}", get_work_item),
    Route("/teams/{team}/work", team_work),
]
