"""Access's read API (JSON over HTTP): a user's positions, P30 history, reviews due, outstanding
emergency P30s, the access team's queue of P30s to action (AC20, AC21), removals, telephony
routing (AC05) and the work views of AC17-AC19.

TR05: every read needs a sign-in token and the reader is the token's user: their own views are
under `/me/...`. Another person's access records (`/users/{user_id}/...`) are read only by those
`domain.require_reads_user` allows (their line manager, a primary TL/SM of their primary segment,
the access team); reviews due and outstanding P30s list only the records the reader may read.
The one write (completing from the segment list, refused by AC18) takes the token in a header
and a JSON body."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.access import Role
from services.access import audit, domain, store
from services.shared import guard
from services.shared.identity import AppRole, Principal
from services.shared.rules import RuleViolation

OPEN_STATES = ("incoming", "incomplete")


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _rows(rows: Any) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in dict(r._mapping).items()} for r in rows]


def _forbidden(violation: RuleViolation) -> guard.HttpRefusal:
    return guard.HttpRefusal(403, violation.reason, violation.rule)


async def _access_team(conn: AsyncConnection, reader: Principal) -> bool:
    """AC20: the access administration team (positions in the directory's access-team units)
    and the directory administrators read everyone's access records."""
    if reader.has(AppRole.DIRECTORY_ADMIN):
        return True
    holdings = await store.holdings(conn, reader.user_id)
    return domain.is_access_team(holdings, await store.all_units(conn))


async def _readable(conn: AsyncConnection, reader: Principal, user_ids: set[str]) -> set[str]:
    """Of these users, those whose access records the reader may read (TR05)."""
    if await _access_team(conn, reader):
        return set(user_ids)
    found = {reader.user_id} & user_ids
    others = user_ids - found
    if not others:
        return found
    me = await store.holdings(conn, reader.user_id)
    units = await store.all_units(conn)
    for user_id in sorted(others):
        user = await store.holdings(conn, user_id)
        if user is None:
            continue
        try:
            domain.require_reads_user(reader.user_id, me, user, units, access_team=False)
        except RuleViolation:
            continue
        found.add(user_id)
    return found


async def _require_reads(conn: AsyncConnection, reader: Principal, user_id: str) -> None:
    """TR05: refused (403) unless the reader may read this user's access records; a user the
    directory does not know is refused the same way, except to the access team (then 404)."""
    if reader.user_id == user_id or await _access_team(conn, reader):
        return
    user = await store.holdings(conn, user_id)
    if user is None:
        raise guard.HttpRefusal(
            403, f"{reader.user_id} may not read {user_id}'s access records", "TR05"
        )
    try:
        domain.require_reads_user(
            reader.user_id,
            await store.holdings(conn, reader.user_id),
            user,
            await store.all_units(conn),
            access_team=False,
        )
    except RuleViolation as refused:
        raise _forbidden(refused) from None


def _not_in_directory(reader: Principal, user_id: str) -> Response:
    if reader.user_id == user_id:
        raise guard.HttpRefusal(
            403, f"{user_id} holds no position in the directory: nothing to read", "TR05"
        )
    return JSONResponse({"error": "no such user"}, status_code=404)


async def _current_position(conn: AsyncConnection, user_id: str) -> str | None:
    """AC17: the selected position, or the primary one until the user changes position."""
    u = store.users
    current = await conn.scalar(sa.select(u.c.current_position_id).where(u.c.user_id == user_id))
    if current:
        return str(current)
    holdings = await store.holdings(conn, user_id)
    primary = holdings.primary if holdings else None
    return primary.position_id if primary else None


async def _positions(request: Request, reader: Principal, user_id: str) -> Response:
    """Primary and secondary positions: type, records backing each, review due, P30 state."""
    pos, g, p = store.positions, store.grants, store.p30s
    async with request.app.state.engine.connect() as conn:
        await _require_reads(conn, reader, user_id)
        positions = _rows(
            await conn.execute(
                sa.select(pos)
                .where(pos.c.user_id == user_id, pos.c.state != "removed")
                .order_by(pos.c.granted_at, pos.c.position_id)
            )
        )
        if not positions:
            return _not_in_directory(reader, user_id)
        records = _rows(
            await conn.execute(
                sa.select(
                    g.c.grant_id,
                    g.c.position_id,
                    g.c.kind,
                    g.c.emergency,
                    g.c.granted_at,
                    g.c.review_due_at,
                    g.c.p30_id,
                    p.c.state.label("p30_state"),
                    p.c.deadline.label("p30_deadline"),
                )
                .join(p, p.c.p30_id == g.c.p30_id)
                .where(g.c.user_id == user_id, g.c.state == "active")
                .order_by(g.c.granted_at)
            )
        )
        current = await _current_position(conn, user_id)
    for position in positions:
        position["records"] = [r for r in records if r["position_id"] == position["position_id"]]
        position["current"] = position["position_id"] == current
    return JSONResponse(
        {
            "user_id": user_id,
            "current_position_id": current,
            "primary": next(x for x in positions if x["kind"] == "primary"),
            "secondary": [x for x in positions if x["kind"] != "primary"],
        }
    )


async def _p30s(request: Request, reader: Principal, user_id: str) -> Response:
    """AC04: the user's P30 records, set-ups and removals."""
    p = store.p30s
    async with request.app.state.engine.connect() as conn:
        await _require_reads(conn, reader, user_id)
        rows = await conn.execute(
            sa.select(p).where(p.c.user_id == user_id).order_by(p.c.recorded_at, p.c.p30_id)
        )
        return JSONResponse({"p30s": _rows(rows)})


async def _removals(request: Request, reader: Principal, user_id: str) -> Response:
    """AC16: removals and their saga state (a failed release stays pending with its reason)."""
    r = store.releases
    async with request.app.state.engine.connect() as conn:
        await _require_reads(conn, reader, user_id)
        rows = await conn.execute(
            sa.select(r).where(r.c.user_id == user_id).order_by(r.c.requested_at)
        )
        return JSONResponse({"removals": _rows(rows)})


async def audit_verify(request: Request) -> Response:
    """The audit journal of P30s, grants and removals checked whole (issue 11): for an
    operator. `intact` is true when there is no finding."""
    await guard.with_role(request, AppRole.OPERATOR)
    async with request.app.state.engine.connect() as conn:
        findings = await audit.verify(conn)
        entries = await conn.scalar(sa.text("select count(*) from access.audit_journal"))
    return JSONResponse(
        {"intact": not findings, "entries": entries, "findings": [str(f) for f in findings]}
    )


async def reviews_due(request: Request) -> Response:
    """AC09: absence-related records whose review falls due by `at` (default: now) plus the
    notice period; only those of users whose records the reader may read (TR05)."""
    reader = await guard.signed_in(request)
    at = request.query_params.get("at")
    try:
        moment = datetime.fromisoformat(at) if at else request.app.state.runtime.clock()
    except ValueError:
        return JSONResponse({"error": "at must be an ISO timestamp"}, status_code=400)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    g = store.grants
    async with request.app.state.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(g)
            .where(
                g.c.state == "active",
                g.c.kind == "absence-related",
                g.c.review_due_at <= moment + domain.REVIEW_NOTICE,
            )
            .order_by(g.c.review_due_at)
        )
        items = _rows(rows)
        readable = await _readable(conn, reader, {i["user_id"] for i in items})
    items = [i for i in items if i["user_id"] in readable]
    for item in items:
        item["overdue"] = datetime.fromisoformat(item["review_due_at"]) <= moment
    return JSONResponse({"reviews": items})


async def outstanding_p30s(request: Request) -> Response:
    """AC11: emergency grants whose P30 has not arrived; `overdue_flagged` once past deadline.
    Only those of users whose records the reader may read (TR05)."""
    reader = await guard.signed_in(request)
    p = store.p30s
    async with request.app.state.engine.connect() as conn:
        rows = _rows(
            await conn.execute(
                sa.select(p).where(p.c.emergency, p.c.state == "outstanding").order_by(p.c.deadline)
            )
        )
        readable = await _readable(conn, reader, {r["user_id"] for r in rows})
    return JSONResponse({"outstanding": [r for r in rows if r["user_id"] in readable]})


ACTION_QUEUE_STATES = ("submitted", "requested", "scheduled")


async def p30s_to_action(request: Request) -> Response:
    """AC20, AC21: the access team's queue: P30s submitted and emergency requests awaiting an
    answer or scheduled. Only the access team reads it (TR05)."""
    reader = await guard.signed_in(request)
    p = store.p30s
    async with request.app.state.engine.connect() as conn:
        if not await _access_team(conn, reader):
            raise guard.HttpRefusal(
                403, f"{reader.user_id} is not in the access administration team", "AC20"
            )
        rows = await conn.execute(
            sa.select(p)
            .where(p.c.state.in_(ACTION_QUEUE_STATES))
            .order_by(p.c.emergency.desc(), p.c.recorded_at, p.c.p30_id)
        )
        return JSONResponse({"p30s": _rows(rows)})


async def _telephony(request: Request, reader: Principal, user_id: str) -> Response:
    """AC05: calls route on the primary position only."""
    async with request.app.state.engine.connect() as conn:
        await _require_reads(conn, reader, user_id)
        holdings = await store.holdings(conn, user_id)
    primary = domain.telephony_position(holdings) if holdings else None
    if primary is None:
        return _not_in_directory(reader, user_id)
    return JSONResponse(
        {"user_id": user_id, "position_id": primary.position_id, "unit_id": primary.unit_id}
    )


def _open_items(*owner_ids: str) -> Any:
    w = store.work_items
    return (
        sa.select(w)
        .where(w.c.owner_kind == "worker", w.c.owner_id.in_(owner_ids), w.c.state.in_(OPEN_STATES))
        .order_by(w.c.updated_at, w.c.work_item_id)
    )


async def my_service_requests(request: Request) -> Response:
    """AC18 (and AC17): only open items assigned to the signed-in user's current position."""
    user_id = (await guard.signed_in(request)).user_id
    async with request.app.state.engine.connect() as conn:
        current = await _current_position(conn, user_id)
        if current is None:
            raise guard.HttpRefusal(403, f"{user_id} holds no position in the directory", "AC18")
        rows = await conn.execute(_open_items(current))
        return JSONResponse({"position_id": current, "items": _rows(rows)})


async def segment_list(request: Request) -> Response:
    """AC18: all open items assigned to the signed-in user across positions; read-only."""
    user_id = (await guard.signed_in(request)).user_id
    async with request.app.state.engine.connect() as conn:
        holdings = await store.holdings(conn, user_id)
        if holdings is None:
            raise guard.HttpRefusal(403, f"{user_id} holds no position in the directory", "AC18")
        rows = await conn.execute(_open_items(*(p.position_id for p in holdings.positions)))
        return JSONResponse({"read_only": True, "items": _rows(rows)})


async def complete_from_segment_list(request: Request) -> Response:
    """AC18: completing from the personal segment list view is refused. A write (TR05): the
    sign-in token in a header and a JSON body, so a cross-site form cannot send one."""
    await guard.signed_in(request)
    await guard.json_body(request)
    try:
        domain.refuse_completion_from_list_view()
    except RuleViolation as refused:
        return JSONResponse({"rule": refused.rule, "reason": refused.reason}, status_code=409)
    return JSONResponse({}, status_code=500)  # pragma: no cover - the domain always refuses


async def team_view(request: Request) -> Response:
    """AC19 (and AC17): for the signed-in team leader's (or segment manager's) selected
    position, the caseworkers of its team and only the items assigned to that team (its queue,
    hopper and its caseworkers' positions)."""
    user_id = (await guard.signed_in(request)).user_id
    pos, u, w = store.positions, store.units, store.work_items
    async with request.app.state.engine.connect() as conn:
        current = await _current_position(conn, user_id)
        holdings = await store.holdings(conn, user_id)
        try:
            domain.team_view_position(
                user_id, holdings.position(current) if holdings and current else None
            )
        except RuleViolation as refused:
            raise _forbidden(refused) from None
        row = (await conn.execute(sa.select(pos).where(pos.c.position_id == current))).first()
        if row is None:
            raise guard.HttpRefusal(403, f"{user_id} holds no position in the directory", "AC17")
        unit = (await conn.execute(sa.select(u).where(u.c.unit_id == row.unit_id))).first()
        caseworkers = _rows(
            await conn.execute(
                sa.select(pos.c.position_id, pos.c.user_id, pos.c.role)
                .where(
                    pos.c.unit_id == row.unit_id,
                    pos.c.state == "active",
                    pos.c.role == Role.CASEWORKER.value,
                )
                .order_by(pos.c.user_id)
            )
        )
        owners = [row.unit_id] + ([unit.hopper_id] if unit and unit.hopper_id else [])
        items = _rows(
            await conn.execute(
                sa.select(w)
                .where(
                    w.c.state.in_(OPEN_STATES),
                    sa.or_(
                        w.c.owner_id.in_(owners) & (w.c.owner_kind != "worker"),
                        w.c.owner_id.in_([c["position_id"] for c in caseworkers])
                        & (w.c.owner_kind == "worker"),
                    ),
                )
                .order_by(w.c.updated_at)
            )
        )
    return JSONResponse(
        {"position_id": current, "unit_id": row.unit_id, "caseworkers": caseworkers, "items": items}
    )


View = Callable[[Request, Principal, str], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _mine(view: View) -> Endpoint:
    """`/me/...`: the signed-in user's own view."""

    async def endpoint(request: Request) -> Response:
        reader = await guard.signed_in(request)
        return await view(request, reader, reader.user_id)

    return endpoint


def _theirs(view: View) -> Endpoint:
    """`/users/{user_id}/...`: another person's view, authorised by `_require_reads` (TR05)."""

    async def endpoint(request: Request) -> Response:
        reader = await guard.signed_in(request)
        return await view(request, reader, request.path_params["user_id"])

    return endpoint


routes = [
    Route("/me/positions", _mine(_positions)),
    Route("/me/p30s", _mine(_p30s)),
    Route("/me/removals", _mine(_removals)),
    Route("/me/telephony", _mine(_telephony)),
    Route("/me/my-service-requests", my_service_requests),
    Route("/me/segment-list", segment_list),
    Route(
        "/me/segment-list/{work_item_id}/complete",
        complete_from_segment_list,
        methods=["POST"],
    ),
    Route("/me/team-view", team_view),
    Route("/users/{user_id}/positions", _theirs(_positions)),
    Route("/users/{user_id}/p30s", _theirs(_p30s)),
    Route("/users/{user_id}/removals", _theirs(_removals)),
    Route("/users/{user_id}/telephony", _theirs(_telephony)),
    Route("/reviews/due", reviews_due),
    Route("/audit/verify", audit_verify),
    Route("/p30s/outstanding", outstanding_p30s),
    Route("/p30s/to-action", p30s_to_action),
]
