"""Sign-off's tables (schema `signoff`) and queries."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import Actor
from contracts.allocation import StepType
from contracts.signoff import NextAction
from services.shared.directory import Directory, directory_tables
from services.shared.plumbing_tables import inbox_table, outbox_table
from services.shared.positions import Position
from services.signoff import domain

SCHEMA = "signoff"
metadata = sa.MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
directory_t = directory_tables(metadata)
directory = Directory(directory_t)


steps = sa.Table(
    "steps",
    metadata,
    sa.Column("step_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("person_id", sa.Text, nullable=False, index=True),
    sa.Column("person_name", sa.Text),
    sa.Column("step_type", sa.Text, nullable=False),
    sa.Column("owner_kind", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("answers", JSONB, nullable=False, server_default="{}"),
    sa.Column("finished", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("finished_by_position_id", sa.Text),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# SO04: the next actions recorded on a step, in the order they were added.
next_actions = sa.Table(
    "next_actions",
    metadata,
    sa.Column("action_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column("step_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("action_type", sa.Text, nullable=False),
    sa.Column("assignee_kind", sa.Text, nullable=False),
    sa.Column("assignee_id", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("priority", sa.Text, nullable=False),
    sa.Column("added_by_position_id", sa.Text),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
)

# SO01, SO07: requests sent from a step to a team's incoming requests, and what became of them.
requests = sa.Table(
    "requests",
    metadata,
    sa.Column("request_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("step_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("team", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("sent_by_position_id", sa.Text),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_by_position_id", sa.Text),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("note", sa.Text),
    sa.Index("ix_requests_team_state", "team", "state"),
)


def track_step(
    *,
    step_id: uuid.UUID,
    person_id: str,
    person_name: str | None,
    step_type: str,
    owner_kind: str,
    owner_id: str,
    now: datetime,
) -> Any:
    """Insert the step if new, else refresh who holds it; returns whether it was new."""
    stmt = insert(steps).values(
        step_id=step_id,
        person_id=person_id,
        person_name=person_name,
        step_type=step_type,
        owner_kind=owner_kind,
        owner_id=owner_id,
        created_at=now,
        updated_at=now,
    )
    return stmt.on_conflict_do_update(
        index_elements=[steps.c.step_id],
        set_={"owner_kind": owner_kind, "owner_id": owner_id, "updated_at": now},
    ).returning(sa.literal_column("xmax = 0").label("inserted"))


async def load_step(conn: AsyncConnection, step_id: uuid.UUID) -> domain.Step | None:
    """The step with its next actions and requests, locked for this transaction."""
    row = (
        await conn.execute(sa.select(steps).where(steps.c.step_id == step_id).with_for_update())
    ).first()
    if row is None:
        return None
    actions = await conn.execute(
        sa.select(next_actions)
        .where(next_actions.c.step_id == step_id)
        .order_by(next_actions.c.seq)
    )
    reqs = await conn.execute(
        sa.select(requests).where(requests.c.step_id == step_id).order_by(requests.c.sent_at)
    )
    return domain.Step(
        step_id=row.step_id,
        person_id=row.person_id,
        step_type=StepType(row.step_type),
        owner_kind=row.owner_kind,
        owner_id=row.owner_id,
        finished=row.finished,
        answers=dict(row.answers),
        next_actions=[
            NextAction(
                action_id=a.action_id,
                action_type=a.action_type,
                assignee_kind=a.assignee_kind,
                assignee_id=a.assignee_id,
                note=a.note,
                priority=a.priority,
            )
            for a in actions
        ],
        requests=[
            domain.Request(
                request_id=r.request_id,
                state=domain.RequestState(r.state),
                sent_by_position_id=r.sent_by_position_id,
            )
            for r in reqs
        ],
    )


async def _named(conn: AsyncConnection, position: Position) -> Position:
    """The position with its unit's name (sign-off's rules name their teams)."""
    unit = await directory.unit(conn, position.unit_id)
    return replace(position, unit_name=unit["name"] if unit else None)


async def acting_position(conn: Any, actor: Actor | None) -> Position | None:
    """The signed actor's position from the directory projection, with its unit's name; None
    unless the position is active and held by that very user."""
    position = await directory.acting_position(conn, actor)
    return await _named(conn, position) if position is not None else None


async def positions_of(conn: AsyncConnection, user_id: str) -> list[Position]:
    """Every active position the user holds, with their units' names (TR05: the reader's
    positions)."""
    return [await _named(conn, p) for p in await directory.positions_of(conn, user_id)]


async def step_row(conn: AsyncConnection, step_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(steps).where(steps.c.step_id == step_id))).first()
    return dict(row._mapping) if row else None
