"""Allocation's tables (schema `allocation`) and queries."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from services.shared.plumbing_tables import inbox_table, outbox_table

SCHEMA = "allocation"
metadata = sa.MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

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
    sa.Index("ix_work_items_owner", "owner_kind", "owner_id", "state"),
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


async def upsert_person(
    conn: AsyncConnection, person_id: str, name: str | None, area: str | None
) -> None:
    from sqlalchemy.dialects.postgresql import insert

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


async def work_item(conn: AsyncConnection, work_item_id: Any) -> dict[str, Any] | None:
    row = (
        await conn.execute(sa.select(work_items).where(work_items.c.work_item_id == work_item_id))
    ).first()
    return dict(row._mapping) if row else None
