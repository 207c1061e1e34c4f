"""Allocation's tables (schema `allocation`) and queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.allocation import StepType, WorkState
from services.allocation.domain import INBOX_TEAMS, Placement, Relationship, Unit, WorkItem
from services.allocation.domain import owner_text as owner_text
from services.shared.directory import Directory, Position, directory_tables
from services.shared.plumbing_tables import inbox_table, outbox_table

SCHEMA = "allocation"
metadata = sa.MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
directory_t = directory_tables(metadata)
directory = Directory(directory_t)

persons = sa.Table(
    "persons",
    metadata,
    sa.Column("person_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("area", sa.Text),
)

work_items = sa.Table(
    "work_items",
    metadata,
    sa.Column("work_item_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("person_id", sa.Text, nullable=False, index=True),
    sa.Column("step_type", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("owner_kind", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("priority", sa.Text, nullable=False),
    sa.Column("notes", JSONB, nullable=False, server_default="[]"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # DL01: when the item is due; DL02: how far its deadline has been flagged by the sweep.
    sa.Column("due_at", sa.DateTime(timezone=True)),
    sa.Column("deadline_flag", sa.Text, nullable=False, server_default="none"),
    sa.Index("ix_work_items_owner", "owner_kind", "owner_id", "state"),
    sa.Index(
        "ix_work_items_deadline",
        "due_at",
        postgresql_where=sa.text("state <> 'finished' AND deadline_flag <> 'overdue'"),
    ),
)

# AL12: every change to a work item, who made it, when, from whom to whom.
work_history = sa.Table(
    "work_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("work_item_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("person_id", sa.Text, nullable=False, index=True),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("actor_user_id", sa.Text),
    sa.Column("from_owner", sa.Text),
    sa.Column("to_owner", sa.Text),
    sa.Column("detail", JSONB, nullable=False, server_default="{}"),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

# AL05, AL11: worker relationships on a person (professional relationships of the record).
relationships = sa.Table(
    "worker_relationships",
    metadata,
    sa.Column("relationship_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("person_id", sa.Text, nullable=False, index=True),
    sa.Column("worker_position_id", sa.Text, nullable=False),
    sa.Column("worker_user_id", sa.Text, nullable=False),
    sa.Column("relationship_type", sa.Text, nullable=False),
    sa.Column("from_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date),
    sa.Column("recorded_by", sa.Text),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# AL04: sign-off requests in a team's incoming requests (from signoff.events).
requests = sa.Table(
    "incoming_requests",
    metadata,
    sa.Column("request_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("step_id", UUID(as_uuid=True), nullable=False),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("team", sa.Text, nullable=False, index=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("sent_by_position_id", sa.Text),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# AL15: a finished step's content (its form's sections and answers) for the person's Documents,
# from sign-off's step_finished.
documents = sa.Table(
    "documents",
    metadata,
    sa.Column("work_item_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("person_id", sa.Text, nullable=False, index=True),
    sa.Column("step_type", sa.Text, nullable=False),
    sa.Column("sections", JSONB, nullable=False),
    sa.Column("finished_by_position_id", sa.Text),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
)


def _person_upsert() -> Any:
    stmt = insert(persons)
    return stmt.on_conflict_do_update(
        index_elements=[persons.c.person_id],
        set_={
            "name": stmt.excluded.name,
            "area": sa.func.coalesce(stmt.excluded.area, persons.c.area),
        },
    )


# Statements for staged writes (HandlerContext.stage): one object each, so that the rows of a
# batch are written together.
PERSON_UPSERT = _person_upsert()
WORK_ITEM_INSERT = insert(work_items)
HISTORY_INSERT = work_history.insert()


async def upsert_person(
    conn: AsyncConnection, person_id: str, name: str | None, area: str | None
) -> None:
    stmt = insert(persons).values(person_id=person_id, name=name or person_id, area=area)
    updates: dict[str, Any] = {}
    if name:
        updates["name"] = stmt.excluded.name
    if area:
        updates["area"] = stmt.excluded.area
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[persons.c.person_id], set_=updates)
        if updates
        else stmt.on_conflict_do_nothing()
    )


async def person(conn: AsyncConnection, person_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(persons).where(persons.c.person_id == person_id))).first()
    return dict(row._mapping) if row else None


async def work_item(conn: AsyncConnection, work_item_id: Any) -> dict[str, Any] | None:
    row = (
        await conn.execute(sa.select(work_items).where(work_items.c.work_item_id == work_item_id))
    ).first()
    return dict(row._mapping) if row else None


def _item(row: Any) -> WorkItem:
    return WorkItem(
        work_item_id=row.work_item_id,
        person_id=row.person_id,
        step_type=StepType(row.step_type),
        state=WorkState(row.state),
        owner_kind=row.owner_kind,
        owner_id=row.owner_id,
        priority=row.priority,
        person_name=row.person_name,
        due_at=row.due_at,
    )


def _items() -> sa.Select[Any]:
    """Work items with their person's name."""
    name = (
        sa.select(persons.c.name)
        .where(persons.c.person_id == work_items.c.person_id)
        .scalar_subquery()
    )
    return sa.select(work_items, name.label("person_name"))


async def load_item(
    conn: AsyncConnection, work_item_id: uuid.UUID, *, lock: bool = True
) -> WorkItem | None:
    query = _items().where(work_items.c.work_item_id == work_item_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return _item(row) if row else None


async def load_items(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, WorkItem]:
    rows = await conn.execute(
        _items()
        .where(work_items.c.work_item_id.in_(list(ids)))
        .order_by(work_items.c.work_item_id)
        .with_for_update()
    )
    return {r.work_item_id: _item(r) for r in rows}


async def items_held(conn: AsyncConnection, kind: str, owner_id: str) -> list[WorkItem]:
    t = work_items
    rows = await conn.execute(
        _items()
        .where(t.c.owner_kind == kind, t.c.owner_id == owner_id, t.c.state != WorkState.FINISHED)
        .order_by(t.c.created_at, t.c.work_item_id)
        .with_for_update()
    )
    return [_item(r) for r in rows]


async def deadlines_reached(
    conn: AsyncConnection, now: datetime, due_day_begun_before: datetime, limit: int
) -> list[tuple[WorkItem, str]]:
    """DL02: unfinished items with a deadline flag to raise as of `now` (not yet flagged and
    their due day begun, or flagged due and past due), with their flag; locked, skipping rows
    another sweep holds."""
    t = work_items
    rows = await conn.execute(
        _items()
        .where(
            t.c.state != WorkState.FINISHED.value,
            sa.or_(
                (t.c.deadline_flag == "none") & (t.c.due_at < due_day_begun_before),
                (t.c.deadline_flag == "due") & (t.c.due_at < now),
            ),
        )
        .order_by(t.c.due_at, t.c.work_item_id)
        .limit(limit)
        .with_for_update(of=t, skip_locked=True)
    )
    return [(_item(r), r.deadline_flag) for r in rows]


# --- the directory projection ----------------------------------------------------------------


class _Lookups:
    """Directory lookups remembered for one consumed batch (its transaction): a batch of
    commands by one Senior Officer for one team reads the same positions and units again and
    again. Forgotten whenever a directory event is applied (the projection empties the memo)."""

    def __init__(self) -> None:
        self.positions: dict[str, Position | None] = {}
        self.units: dict[str, dict[str, Any] | None] = {}
        self.hopper_units: dict[str, str | None] = {}
        self.hierarchy: dict[str, Unit] | None = None


_LOOKUPS = "_allocation_lookups"


def _lookups(conn: AsyncConnection) -> _Lookups:
    memo: dict[str, Any] | None = getattr(conn, "memo", None)
    if memo is None:
        return _Lookups()  # a plain connection (the read API): no memory, every lookup reads
    return memo.setdefault(_LOOKUPS, _Lookups())  # type: ignore[no-any-return]


async def position(conn: AsyncConnection, position_id: str | None) -> Position | None:
    """A position as the projection knows it, active or not (`Position.active` says)."""
    if not position_id:
        return None
    cache = _lookups(conn).positions
    if position_id not in cache:
        cache[position_id] = await directory.position(conn, position_id, active_only=False)
    return cache[position_id]


async def unit(conn: AsyncConnection, unit_id: str | None) -> dict[str, Any] | None:
    if not unit_id:
        return None
    cache = _lookups(conn).units
    if unit_id not in cache:
        cache[unit_id] = await directory.unit(conn, unit_id)
    return cache[unit_id]


async def hierarchy(conn: AsyncConnection) -> dict[str, Unit]:
    """Every unit with its parent and hopper: the organisation of units that AL10 follows to the
    root (read once per consumed batch; once per request on a read connection)."""
    lookups = _lookups(conn)
    if lookups.hierarchy is None:
        u = directory_t.units
        rows = await conn.execute(sa.select(u.c.unit_id, u.c.kind, u.c.parent_id, u.c.hopper_id))
        lookups.hierarchy = {
            r.unit_id: Unit(r.unit_id, r.kind, r.parent_id, r.hopper_id) for r in rows
        }
    return lookups.hierarchy


async def owning_unit(conn: AsyncConnection, kind: str, owner_id: str) -> str | None:
    """The team or segment that owns work held by this owner (AL10)."""
    if kind == "team":
        return owner_id
    if kind == "inbox":
        return INBOX_TEAMS.get(owner_id)
    if kind == "hopper":
        cache = _lookups(conn).hopper_units
        if owner_id not in cache:
            u = directory_t.units
            cache[owner_id] = await conn.scalar(
                sa.select(u.c.unit_id).where(u.c.hopper_id == owner_id).limit(1)
            )
        return cache[owner_id]
    held_by = await position(conn, owner_id)
    return held_by.unit_id if held_by else None


async def person_relationships(
    conn: AsyncConnection, person_ids: Iterable[str]
) -> dict[str, list[Relationship]]:
    r = relationships
    rows = await conn.execute(sa.select(r).where(r.c.person_id.in_(list(set(person_ids)))))
    out: dict[str, list[Relationship]] = {}
    for row in rows:
        out.setdefault(row.person_id, []).append(
            Relationship(row.worker_user_id, row.relationship_type, row.from_date, row.end_date)
        )
    return out


async def person_names(conn: AsyncConnection, person_ids: Iterable[str]) -> dict[str, str]:
    rows = await conn.execute(
        sa.select(persons.c.person_id, persons.c.name).where(
            persons.c.person_id.in_(list(set(person_ids)))
        )
    )
    return {r.person_id: r.name for r in rows}


# --- writing ---------------------------------------------------------------------------------


def history_row(
    item: WorkItem,
    change: str,
    *,
    actor_user_id: str | None,
    at: Any,
    from_owner: str | None = None,
    to_owner: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "work_item_id": item.work_item_id,
        "person_id": item.person_id,
        "change": change,
        "actor_user_id": actor_user_id,
        "from_owner": from_owner,
        "to_owner": to_owner,
        "detail": detail or {},
        "at": at,
    }


def move_statement(
    ids: Sequence[uuid.UUID],
    to: Placement,
    *,
    at: Any,
    keep_state: bool = True,
    priority: str | None = None,
    note: dict[str, Any] | None = None,
) -> sa.Update:
    """One UPDATE moving these items to one owner (state kept unless told), appending a note."""
    t = work_items
    values: dict[str, Any] = {
        "owner_kind": to.owner_kind,
        "owner_id": to.owner_id,
        "updated_at": at,
    }
    if not keep_state:
        values["state"] = to.state.value
    if priority is not None:
        values["priority"] = priority
    if note is not None:
        values["notes"] = t.c.notes.op("||")(sa.func.jsonb_build_array(sa.cast(note, JSONB)))
    return t.update().where(t.c.work_item_id.in_(list(ids))).values(**values)
