"""Allocation's read API (JSON over HTTP): team summary and workviews (AL04), a worker's and an
inbox's or hopper's current work, a person's record (current work, documents, workflow map, work
history (AL12), professional relationships) and search of work by person name (AL08)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.allocation import StepType, WorkState
from services.allocation import domain, store

SEARCH_LIMIT = 2000


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _row(row: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in dict(row._mapping).items()}


def _items_query() -> sa.Select[Any]:
    """Work items with the person's name and, for a worker, the holder's name."""
    t, p = store.work_items, store.persons
    pos, users = store.directory_t.positions, store.directory_t.users
    return (
        sa.select(
            t,
            p.c.name.label("person_name"),
            users.c.name.label("owner_name"),
            pos.c.user_id.label("owner_user_id"),
        )
        .select_from(
            t.outerjoin(p, p.c.person_id == t.c.person_id)
            .outerjoin(pos, sa.and_(t.c.owner_kind == "worker", pos.c.position_id == t.c.owner_id))
            .outerjoin(users, users.c.user_id == pos.c.user_id)
        )
        .order_by(t.c.created_at, t.c.work_item_id)
    )


async def _items(conn: AsyncConnection, *where: Any) -> list[dict[str, Any]]:
    return [_row(r) for r in await conn.execute(_items_query().where(*where))]


def _split(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {
        "incoming_work": [i for i in items if i["state"] == WorkState.INCOMING],
        "incomplete_work": [i for i in items if i["state"] == WorkState.INCOMPLETE],
    }


async def _incoming_requests(conn: AsyncConnection, team: str) -> list[dict[str, Any]]:
    r, p = store.requests, store.persons
    rows = await conn.execute(
        sa.select(r, p.c.name.label("person_name"))
        .select_from(r.outerjoin(p, p.c.person_id == r.c.person_id))
        .where(r.c.team == team, r.c.state == "outstanding")
        .order_by(r.c.sent_at)
    )
    return [_row(row) for row in rows]


async def _team_queue(conn: AsyncConnection, team: str) -> Any:
    """The owners whose work is the team's own: its queue and its hopper."""
    t = store.work_items
    hopper = (await store.unit(conn, team) or {}).get("hopper_id")
    owners = [sa.and_(t.c.owner_kind == "team", t.c.owner_id == team)]
    if hopper:
        owners.append(sa.and_(t.c.owner_kind == "hopper", t.c.owner_id == hopper))
    return sa.or_(*owners)


def _teams_known(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    known = {u["unit_id"]: u for u in units}
    for team in domain.TEAMS:
        known.setdefault(team, {"unit_id": team, "name": team, "kind": "team"})
    return sorted(known.values(), key=lambda u: u["name"])


async def _counts(conn: AsyncConnection, *where: Any) -> dict[str, int]:
    t = store.work_items
    rows = await conn.execute(
        sa.select(t.c.state, sa.func.count()).where(*where).group_by(t.c.state)
    )
    counts = {str(state): int(n) for state, n in rows}
    return {s.value: counts.get(s.value, 0) for s in (WorkState.INCOMING, WorkState.INCOMPLETE)}


async def team_summary(request: Request) -> Response:
    """AL04: the teams, each with its work and request counts."""
    u = store.directory_t.units
    async with request.app.state.engine.connect() as conn:
        units = [_row(r) for r in await conn.execute(sa.select(u).where(u.c.kind == "team"))]
        teams = []
        for team in _teams_known(units):
            counts = await _counts(conn, await _team_queue(conn, team["unit_id"]))
            requests = len(await _incoming_requests(conn, team["unit_id"]))
            teams.append({**team, **counts, "incoming_requests": requests})
    return JSONResponse({"teams": teams})


async def team(request: Request) -> Response:
    """AL04: one team's summary: its workers and inboxes with their work counts."""
    team_id = request.path_params["team"]
    t = store.work_items
    pos, users = store.directory_t.positions, store.directory_t.users
    async with request.app.state.engine.connect() as conn:
        members = [
            _row(r)
            for r in await conn.execute(
                sa.select(pos, users.c.name.label("name"))
                .select_from(pos.outerjoin(users, users.c.user_id == pos.c.user_id))
                .where(pos.c.unit_id == team_id, pos.c.active.is_(True))
                .order_by(users.c.name)
            )
        ]
        for m in members:
            m.update(
                await _counts(conn, t.c.owner_kind == "worker", t.c.owner_id == m["position_id"])
            )
        inboxes = []
        for inbox, inbox_team in domain.INBOX_TEAMS.items():
            if inbox_team == team_id:
                counts = await _counts(conn, t.c.owner_kind == "inbox", t.c.owner_id == inbox)
                inboxes.append({"inbox": inbox, **counts})
        unit = await store.unit(conn, team_id)
    return JSONResponse({"team": team_id, "unit": unit, "workers": members, "inboxes": inboxes})


async def team_work(request: Request) -> Response:
    """AL04: a team's current work: incoming work, incomplete work, incoming requests."""
    team_id = request.path_params["team"]
    async with request.app.state.engine.connect() as conn:
        items = await _items(
            conn, await _team_queue(conn, team_id), store.work_items.c.state != "finished"
        )
        requests = await _incoming_requests(conn, team_id)
    return JSONResponse({"team": team_id, **_split(items), "incoming_requests": requests})


async def _owner_work(request: Request, kind: str, owner_id: str) -> Response:
    t = store.work_items
    async with request.app.state.engine.connect() as conn:
        items = await _items(
            conn, t.c.owner_kind == kind, t.c.owner_id == owner_id, t.c.state != "finished"
        )
    return JSONResponse({"owner_kind": kind, "owner_id": owner_id, **_split(items)})


async def owner_work(request: Request) -> Response:
    """An inbox's or a hopper's (or any owner's) current work."""
    return await _owner_work(request, request.path_params["kind"], request.path_params["owner_id"])


async def worker_work(request: Request) -> Response:
    """A worker's current work (by position)."""
    return await _owner_work(request, "worker", request.path_params["position_id"])


async def _history(conn: AsyncConnection, person_id: str) -> list[dict[str, Any]]:
    h, t = store.work_history, store.work_items
    rows = await conn.execute(
        sa.select(h, t.c.step_type)
        .select_from(h.join(t, t.c.work_item_id == h.c.work_item_id))
        .where(h.c.person_id == person_id)
        .order_by(h.c.at, h.c.id)
    )
    return [_row(r) for r in rows]


async def person_record(request: Request) -> Response:
    """AL04: the person's record."""
    person_id = request.path_params["person_id"]
    t, r = store.work_items, store.relationships
    users = store.directory_t.users
    async with request.app.state.engine.connect() as conn:
        person = await store.person(conn, person_id)
        if person is None:
            return JSONResponse({"error": "no such person"}, status_code=404)
        items = await _items(conn, t.c.person_id == person_id)
        relationships = [
            _row(row)
            for row in await conn.execute(
                sa.select(r, users.c.name.label("worker_name"))
                .select_from(r.outerjoin(users, users.c.user_id == r.c.worker_user_id))
                .where(r.c.person_id == person_id)
                .order_by(r.c.recorded_at)
            )
        ]
        history = await _history(conn, person_id)
    states: dict[StepType, list[WorkState]] = {}
    for i in items:
        states.setdefault(StepType(i["step_type"]), []).append(WorkState(i["state"]))
    return JSONResponse(
        {
            "person": person,
            "current_work": [i for i in items if i["state"] != WorkState.FINISHED],
            "documents": [i for i in items if i["state"] == WorkState.FINISHED],
            "workflow_map": domain.workflow_map(states),
            "work_history": history,
            "professional_relationships": relationships,
        }
    )


async def person_history(request: Request) -> Response:
    """AL12: every change to the person's work: what, who, when, from whom to whom."""
    async with request.app.state.engine.connect() as conn:
        history = await _history(conn, request.path_params["person_id"])
    return JSONResponse({"person_id": request.path_params["person_id"], "work_history": history})


async def search_work(request: Request) -> Response:
    """AL08: find current work by the person's name (for bulk assign)."""
    name = request.query_params.get("person_name", "").strip()
    if not name:
        return JSONResponse({"error": "person_name is required"}, status_code=400)
    t, p = store.work_items, store.persons
    pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    async with request.app.state.engine.connect() as conn:
        items = [
            _row(r)
            for r in await conn.execute(
                _items_query()
                .where(sa.func.lower(p.c.name).like(pattern.lower()), t.c.state != "finished")
                .limit(SEARCH_LIMIT)
            )
        ]
    return JSONResponse({"person_name": name, "work_items": items})


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


routes = [
    Route("/work-items", search_work),
    Route("/work-items/{work_item_id}", get_work_item),
    Route("/teams", team_summary),
    Route("/teams/{team}", team),
    Route("/teams/{team}/work", team_work),
    Route("/workers/{position_id}/work", worker_work),
    Route("/queues/{kind}/{owner_id}/work", owner_work),
    Route("/persons/{person_id}", person_record),
    Route("/persons/{person_id}/history", person_history),
]
