"""Allocation's read API (JSON over HTTP): team summary and workviews (AL04), a worker's and an
inbox's or hopper's current work, a person's record (current work, documents, workflow map, work
history (AL12), professional relationships) and search of work by person name (AL08).

TR05: every read needs a sign-in token; the reader is the token's user, and what they see is
scoped by the positions they hold in the directory projection with the rule the commands use
(`domain.sight`, from `domain.authorise_allocation`: AL10, AC19), plus the work assigned to their
own positions (AC18). Outside that, a read is refused (403) naming the rule."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.allocation import RelationshipType, StepType, WorkState
from services.allocation import deadlines, domain, store
from services.shared import guard
from services.shared.identity import Principal
from services.shared.rules import RuleViolation

SEARCH_LIMIT = 2000
PAGE_LIMIT = 100  # the most rows of one section a paged workview read answers
SECTIONS = {"incoming_work": WorkState.INCOMING, "incomplete_work": WorkState.INCOMPLETE}


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _row(row: Any) -> dict[str, Any]:
    return _flagged({k: _plain(v) for k, v in dict(row._mapping).items()})


def _flagged(out: dict[str, Any]) -> dict[str, Any]:
    if "deadline_flag" in out:  # a work item: DL02, overdue work is flagged in every view
        out["overdue"] = deadlines.is_overdue(
            deadlines.DeadlineFlag(out["deadline_flag"]), WorkState(out["state"])
        )
    return out


def _contains(text: str) -> str:
    """A LIKE pattern (lower case) for names containing `text`, its wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _forbidden(violation: RuleViolation) -> guard.HttpRefusal:
    return guard.HttpRefusal(403, violation.reason, violation.rule)


async def _sight(conn: AsyncConnection, reader: Principal) -> tuple[domain.Sight, domain.Units]:
    """TR05: what the signed-in reader may see, from the positions they hold."""
    units = await store.hierarchy(conn)
    positions = await store.directory.positions_of(conn, reader.user_id)
    return domain.sight(reader.user_id, positions, units), units


def _visible(seen: domain.Sight, units: domain.Units) -> Any:
    """The work items a sight covers, as a condition on work_items (AL10, AL14, AC18, AC19)."""
    t, pos = store.work_items, store.directory_t.positions
    queues = domain.visible_queues(seen, units)
    worker = t.c.owner_kind == "worker"
    clauses = []
    if seen.positions:
        clauses.append(worker & t.c.owner_id.in_(sorted(seen.positions)))
    if seen.units:
        members = sa.select(pos.c.position_id).where(pos.c.unit_id.in_(sorted(seen.units)))
        clauses.append(worker & t.c.owner_id.in_(members))
    for kind, owners in (
        ("team", queues.teams),
        ("inbox", queues.inboxes),
        ("hopper", queues.hoppers),
    ):
        if owners:
            clauses.append((t.c.owner_kind == kind) & t.c.owner_id.in_(sorted(owners)))
    areas = domain.case_monitoring_areas(seen)
    if areas:  # AL14: Case Monitoring a Hub Team worker started, for the area team
        hub_workers = sa.select(pos.c.position_id).where(pos.c.unit_id == domain.HUB_TEAM)
        people = sa.select(store.persons.c.person_id).where(store.persons.c.area.in_(areas))
        clauses.append(
            worker
            & (t.c.step_type == StepType.CASE_MONITORING.value)
            & (t.c.state == WorkState.INCOMPLETE.value)
            & t.c.owner_id.in_(hub_workers)
            & t.c.person_id.in_(people)
        )
    return sa.or_(*clauses) if clauses else sa.false()


async def _require_owner(
    conn: AsyncConnection, seen: domain.Sight, kind: str, owner_id: str
) -> None:
    try:
        domain.require_sight(seen, kind, owner_id, await store.owning_unit(conn, kind, owner_id))
    except RuleViolation as refused:
        raise _forbidden(refused) from None


def _require_unit(seen: domain.Sight, unit_id: str) -> None:
    try:
        domain.require_unit_sight(seen, unit_id)
    except RuleViolation as refused:
        raise _forbidden(refused) from None


async def _require_person(
    conn: AsyncConnection, seen: domain.Sight, units: domain.Units, person_id: str
) -> None:
    """TR05: a person's record is read by those who may see some of that person's work."""
    t = store.work_items
    visible = await conn.scalar(
        sa.select(sa.exists().where(t.c.person_id == person_id, _visible(seen, units)))
    )
    if not visible:
        raise guard.HttpRefusal(
            403,
            f"{seen.user_id} may see no work of person {person_id}, so not their record: you "
            f"read your own work and the work of the teams where you may screen and allocate",
            "AL10",
        )


async def _own_organisation(
    conn: AsyncConnection, seen: domain.Sight, units: domain.Units, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """AL10: of a person's work, what belongs to the reader's own organisations."""
    kept = []
    for item in items:
        owning = await store.owning_unit(conn, item["owner_kind"], item["owner_id"])
        if seen.in_organisation(units, owning):
            kept.append(item)
    return kept


def _of_items(history: list[dict[str, Any]], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = {i["work_item_id"] for i in items}
    return [h for h in history if h["work_item_id"] in ids]


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


class Paging:
    """`?limit=&offset=` of a workview read: `limit` rows (at most PAGE_LIMIT) of each section
    from `offset`; `incoming_offset`, `incomplete_offset` and `requests_offset` page a section on
    its own. Without `limit`, every item (the callers that read a whole queue: the CLI, tests)."""

    def __init__(self, request: Request) -> None:
        query = request.query_params
        self.limit: int | None = None
        self.offsets: dict[str, int] = {}
        if "limit" not in query:
            return
        self.limit = min(max(_whole(query, "limit", PAGE_LIMIT), 1), PAGE_LIMIT)
        offset = _whole(query, "offset", 0)
        for name, param in (
            ("incoming_work", "incoming_offset"),
            ("incomplete_work", "incomplete_offset"),
            ("incoming_requests", "requests_offset"),
        ):
            self.offsets[name] = _whole(query, param, offset)

    def describe(self) -> dict[str, Any]:
        return {"limit": self.limit, "offsets": self.offsets} if self.limit else {}


def _whole(query: Any, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise guard.HttpRefusal(400, f"{name} must be a whole number", "TR05") from None
    if value < 0:
        raise guard.HttpRefusal(400, f"{name} must not be negative", "TR05")
    return value


async def _current_work(conn: AsyncConnection, paging: Paging, *where: Any) -> dict[str, Any]:
    """AL04: the incoming and incomplete sections (a page of each when paged) and their totals,
    counted in SQL: in all, and by priority."""
    t = store.work_items
    if paging.limit is None:
        sections = _split(await _items(conn, *where, t.c.state != WorkState.FINISHED.value))
    else:
        sections = {
            name: await _items_page(
                conn, paging.limit, paging.offsets[name], *where, t.c.state == state.value
            )
            for name, state in SECTIONS.items()
        }
    rows = await conn.execute(
        sa.select(t.c.state, t.c.priority, sa.func.count())
        .where(*where, t.c.state.in_([s.value for s in SECTIONS.values()]))
        .group_by(t.c.state, t.c.priority)
    )
    totals = {name: 0 for name in SECTIONS}
    by_priority: dict[str, dict[str, int]] = {}
    names = {state.value: name for name, state in SECTIONS.items()}
    for state, priority, n in rows:
        totals[names[state]] += int(n)
        by_priority.setdefault(str(priority), {k: 0 for k in SECTIONS})[names[state]] += int(n)
    return {**sections, "totals": {**totals, "by_priority": by_priority}, **paging.describe()}


async def _items_page(
    conn: AsyncConnection, limit: int, offset: int, *where: Any
) -> list[dict[str, Any]]:
    rows = await conn.execute(_items_query().where(*where).limit(limit).offset(offset))
    return [_row(r) for r in rows]


async def _incoming_requests(
    conn: AsyncConnection, team: str, paging: Paging | None = None
) -> list[dict[str, Any]]:
    r, p = store.requests, store.persons
    query = (
        sa.select(r, p.c.name.label("person_name"))
        .select_from(r.outerjoin(p, p.c.person_id == r.c.person_id))
        .where(r.c.team == team, r.c.state == "outstanding")
        .order_by(r.c.sent_at, r.c.step_id)
    )
    if paging is not None and paging.limit is not None:
        query = query.limit(paging.limit).offset(paging.offsets["incoming_requests"])
    return [_row(row) for row in await conn.execute(query)]


async def _requests_count(conn: AsyncConnection, team: str) -> int:
    r = store.requests
    found = await conn.scalar(
        sa.select(sa.func.count()).where(r.c.team == team, r.c.state == "outstanding")
    )
    return int(found or 0)


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
    overdue = await conn.scalar(  # DL02: the same flag as deadlines.is_overdue
        sa.select(sa.func.count()).where(
            *where,
            t.c.deadline_flag == deadlines.DeadlineFlag.OVERDUE.value,
            t.c.state != WorkState.FINISHED.value,
        )
    )
    return {
        **{s.value: counts.get(s.value, 0) for s in (WorkState.INCOMING, WorkState.INCOMPLETE)},
        "overdue": int(overdue or 0),
    }


async def team_summary(request: Request) -> Response:
    """AL04: the teams the reader screens (AL10), each with its work and request counts."""
    reader = await guard.signed_in(request)
    u = store.directory_t.units
    async with request.app.state.engine.connect() as conn:
        seen, _ = await _sight(conn, reader)
        units = [_row(r) for r in await conn.execute(sa.select(u).where(u.c.kind == "team"))]
        teams = []
        for team in _teams_known(units):
            if team["unit_id"] not in seen.units:
                continue
            counts = await _counts(conn, await _team_queue(conn, team["unit_id"]))
            requests = await _requests_count(conn, team["unit_id"])
            teams.append({**team, **counts, "incoming_requests": requests})
    return JSONResponse({"teams": teams})


async def team(request: Request) -> Response:
    """AL04: one team's summary: its workers and inboxes with their work counts."""
    reader = await guard.signed_in(request)
    team_id = request.path_params["team"]
    t = store.work_items
    pos, users = store.directory_t.positions, store.directory_t.users
    async with request.app.state.engine.connect() as conn:
        _require_unit((await _sight(conn, reader))[0], team_id)
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
    """AL04: a team's current work: incoming work, incomplete work, incoming requests (a page of
    each with `?limit=&offset=`), with each section's total and the work's by priority."""
    reader = await guard.signed_in(request)
    team_id = request.path_params["team"]
    paging = Paging(request)
    async with request.app.state.engine.connect() as conn:
        _require_unit((await _sight(conn, reader))[0], team_id)
        work = await _current_work(conn, paging, await _team_queue(conn, team_id))
        requests = await _incoming_requests(conn, team_id, paging)
        work["totals"]["incoming_requests"] = await _requests_count(conn, team_id)
    return JSONResponse({"team": team_id, **work, "incoming_requests": requests})


async def _owner_work(request: Request, kind: str, owner_id: str) -> Response:
    reader = await guard.signed_in(request)
    paging = Paging(request)
    t = store.work_items
    async with request.app.state.engine.connect() as conn:
        await _require_owner(conn, (await _sight(conn, reader))[0], kind, owner_id)
        work = await _current_work(conn, paging, t.c.owner_kind == kind, t.c.owner_id == owner_id)
    return JSONResponse({"owner_kind": kind, "owner_id": owner_id, **work})


async def owner_work(request: Request) -> Response:
    """An inbox's or a hopper's (or any owner's) current work, for those who screen it."""
    return await _owner_work(request, request.path_params["kind"], request.path_params["owner_id"])


async def worker_work(request: Request) -> Response:
    """A worker's current work (by position): their own, or a member's for those who screen
    the member's team (AL10)."""
    return await _owner_work(request, "worker", request.path_params["position_id"])


async def my_work(request: Request) -> Response:
    """The signed-in user's current work across the positions they hold (AC18)."""
    reader = await guard.signed_in(request)
    paging = Paging(request)
    t = store.work_items
    async with request.app.state.engine.connect() as conn:
        seen, _ = await _sight(conn, reader)
        work = await _current_work(
            conn,
            paging,
            t.c.owner_kind == "worker",
            t.c.owner_id.in_(sorted(seen.positions)) if seen.positions else sa.false(),
        )
    return JSONResponse({"user_id": reader.user_id, "positions": sorted(seen.positions), **work})


async def _history(conn: AsyncConnection, person_id: str) -> list[dict[str, Any]]:
    h, t = store.work_history, store.work_items
    rows = await conn.execute(
        sa.select(h, t.c.step_type)
        .select_from(h.join(t, t.c.work_item_id == h.c.work_item_id))
        .where(h.c.person_id == person_id)
        .order_by(h.c.at, h.c.id)
    )
    return [_row(r) for r in rows]


async def _documents(conn: AsyncConnection, person_id: str) -> dict[str, Any]:
    """AL15: the content of the person's finished steps, by work item id."""
    d = store.documents
    rows = await conn.execute(
        sa.select(d.c.work_item_id, d.c.sections).where(d.c.person_id == person_id)
    )
    return {str(r.work_item_id): r.sections for r in rows}


async def person_record(request: Request) -> Response:
    """AL04: the person's record, for those who may see some of the person's work (TR05)."""
    reader = await guard.signed_in(request)
    person_id = request.path_params["person_id"]
    t, r = store.work_items, store.relationships
    users = store.directory_t.users
    async with request.app.state.engine.connect() as conn:
        person = await store.person(conn, person_id)
        if person is None:
            return JSONResponse({"error": "no such person"}, status_code=404)
        seen, units = await _sight(conn, reader)
        await _require_person(conn, seen, units, person_id)
        items = await _own_organisation(
            conn, seen, units, await _items(conn, t.c.person_id == person_id)
        )
        relationships = [
            _row(row)
            for row in await conn.execute(
                sa.select(r, users.c.name.label("worker_name"))
                .select_from(r.outerjoin(users, users.c.user_id == r.c.worker_user_id))
                .where(r.c.person_id == person_id)
                .order_by(r.c.recorded_at)
            )
        ]
        history = _of_items(await _history(conn, person_id), items)
        contents = await _documents(conn, person_id)
    states: dict[StepType, list[WorkState]] = {}
    for i in items:
        states.setdefault(StepType(i["step_type"]), []).append(WorkState(i["state"]))
    return JSONResponse(
        {
            "person": person,
            "current_work": [i for i in items if i["state"] != WorkState.FINISHED],
            "documents": [  # AL15: each finished step with its sections and answers
                {**i, "sections": contents.get(i["work_item_id"], [])}
                for i in items
                if i["state"] == WorkState.FINISHED
            ],
            "workflow_map": domain.workflow_map(states),
            "work_history": history,
            "professional_relationships": relationships,
        }
    )


async def person_history(request: Request) -> Response:
    """AL12: every change to the person's work: what, who, when, from whom to whom."""
    reader = await guard.signed_in(request)
    person_id = request.path_params["person_id"]
    t = store.work_items
    async with request.app.state.engine.connect() as conn:
        if await store.person(conn, person_id) is None:
            return JSONResponse({"error": "no such person"}, status_code=404)
        seen, units = await _sight(conn, reader)
        await _require_person(conn, seen, units, person_id)
        items = await _own_organisation(
            conn, seen, units, await _items(conn, t.c.person_id == person_id)
        )
        history = _of_items(await _history(conn, person_id), items)
    return JSONResponse({"person_id": person_id, "work_history": history})


async def search_work(request: Request) -> Response:
    """AL08: find current work by the person's name (for bulk assign), among the work the
    reader may see (TR05 with AL10, AC18, AC19)."""
    reader = await guard.signed_in(request)
    name = request.query_params.get("person_name", "").strip()
    if not name:
        return JSONResponse({"error": "person_name is required"}, status_code=400)
    t, p = store.work_items, store.persons
    async with request.app.state.engine.connect() as conn:
        visible = _visible(*(await _sight(conn, reader)))
        items = [
            _row(r)
            for r in await conn.execute(
                _items_query()
                .where(
                    sa.func.lower(p.c.name).like(_contains(name)),
                    t.c.state != "finished",
                    visible,
                )
                .limit(SEARCH_LIMIT)
            )
        ]
    return JSONResponse({"person_name": name, "work_items": items})


async def get_work_item(request: Request) -> Response:
    """One work item, for those who may see it (TR05 with AL10, AL14, AC18, AC19)."""
    reader = await guard.signed_in(request)
    try:
        work_item_id = uuid.UUID(request.path_params["work_item_id"])
    except ValueError:
        return JSONResponse({"error": "work item id must be a UUID"}, status_code=400)
    async with request.app.state.engine.connect() as conn:
        row = await store.work_item(conn, work_item_id)
        if row is None:
            return JSONResponse({"error": "no such work item"}, status_code=404)
        seen, _ = await _sight(conn, reader)
        item = await store.load_item(conn, work_item_id, lock=False)
        owning = await store.owning_unit(conn, row["owner_kind"], row["owner_id"])
        area = (await store.person(conn, row["person_id"]) or {}).get("area")
        if item is None or not domain.sees_work(seen, item, owning, area):
            await _require_owner(conn, seen, row["owner_kind"], row["owner_id"])  # refuses
    return JSONResponse(_flagged({k: _plain(v) for k, v in row.items()}))


async def find_workers(request: Request) -> Response:
    """AL16: "Find" a worker by name (pass to worker, worker relationships): the active
    positions whose holder's name contains the text, in the teams where the reader may allocate
    (TR05 with AL10)."""
    reader = await guard.signed_in(request)
    name = request.query_params.get("name", "").strip()
    if not name:
        return JSONResponse({"error": "name is required"}, status_code=400)
    pos, users = store.directory_t.positions, store.directory_t.users
    async with request.app.state.engine.connect() as conn:
        try:
            teams = domain.require_finds_workers((await _sight(conn, reader))[0])
        except RuleViolation as refused:
            raise _forbidden(refused) from None
        rows = await conn.execute(
            sa.select(pos.c.position_id, pos.c.user_id, users.c.name, pos.c.role, pos.c.unit_id)
            .select_from(pos.join(users, users.c.user_id == pos.c.user_id))
            .where(
                pos.c.active.is_(True),
                pos.c.unit_id.in_(sorted(teams)),
                sa.func.lower(users.c.name).like(_contains(name)),
            )
            .order_by(users.c.name, pos.c.position_id)
            .limit(SEARCH_LIMIT)
        )
        workers = [_row(r) for r in rows]
    return JSONResponse({"name": name, "workers": workers})


async def relationship_types(request: Request) -> Response:
    """AL16: the relationship types a worker relationship is chosen from."""
    await guard.signed_in(request)
    return JSONResponse({"relationship_types": [t.value for t in RelationshipType]})


routes = [
    Route("/work-items", search_work),
    Route("/work-items/{work_item_id}", get_work_item),
    Route("/teams", team_summary),
    Route("/teams/{team}", team),
    Route("/teams/{team}/work", team_work),
    Route("/workers", find_workers),
    Route("/workers/{position_id}/work", worker_work),
    Route("/relationship-types", relationship_types),
    Route("/me/work", my_work),
    Route("/queues/{kind}/{owner_id}/work", owner_work),
    Route("/persons/{person_id}", person_record),
    Route("/persons/{person_id}/history", person_history),
]
