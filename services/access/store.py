"""Access's tables (schema `access`) and queries: the directory it is the source of truth for
with the audit of its changes (TR03), the records (grants) backing each secondary position, the
P30 records, the releases of the removal saga, and a projection of who holds which work (from
allocation.events)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.access import AccessKind, Role
from services.access.domain import Directory, DirectoryPosition, Holding, Holdings, Unit
from services.shared.plumbing_tables import inbox_table, outbox_table
from services.shared.positions import Position

SCHEMA = "access"
metadata = sa.MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

TS = sa.DateTime(timezone=True)

units = sa.Table(
    "units",
    metadata,
    sa.Column("unit_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("parent_id", sa.Text),
    sa.Column("code", sa.Text),
    sa.Column("hopper_id", sa.Text),
    sa.Column("functionally_unique", sa.Boolean, nullable=False, server_default="false"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("line_manager_id", sa.Text),
    sa.Column("security_clearance", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("current_position_id", sa.Text),
)

# state: active | removal_pending | removed
positions = sa.Table(
    "positions",
    metadata,
    sa.Column("position_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("unit_id", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("release_failed", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("granted_at", TS, nullable=False),
    sa.Column("removed_at", TS),
)

# TR03: who changed the directory, when, and what (unit, user or position, before and after),
# written in the transaction of the change. action: created | changed.
directory_changes = sa.Table(
    "directory_changes",
    metadata,
    sa.Column("change_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("command_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("changed_by", sa.Text, nullable=False),
    sa.Column("authority", JSONB, nullable=False),  # the caller's roles that allowed it
    sa.Column("changed_at", TS, nullable=False),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("entity_id", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("before", JSONB(none_as_null=True)),  # SQL NULL for a creation
    sa.Column("after", JSONB, nullable=False),
    sa.Index("ix_access_directory_changes_entity", "entity", "entity_id"),
)

# A record that backs a secondary position (AC03 kind); state: active | ended.
grants = sa.Table(
    "grants",
    metadata,
    sa.Column("grant_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("position_id", sa.Text, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("p30_id", UUID(as_uuid=True), nullable=False),
    sa.Column("emergency", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("granted_at", TS, nullable=False),
    sa.Column("review_due_at", TS),
    sa.Column("review_due_flagged", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("review_overdue_flagged", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("ended_at", TS),
    sa.Column("ended_by_p30_id", UUID(as_uuid=True)),
    sa.Column("lapsed_p30_id", UUID(as_uuid=True)),  # AC22: its removal for a lapsed review
)

# AC04: the CSUA P30 records. AC20: submitted | refused | complete | pending (removal actioned,
# work being released); AC21 (emergency): requested | scheduled | outstanding | complete.
p30s = sa.Table(
    "p30s",
    metadata,
    sa.Column("p30_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("unit_ids", JSONB, nullable=False),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("approved_by", sa.Text),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("discussion_held", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("discussed_with", sa.Text),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("emergency", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("deadline", TS),
    sa.Column("overdue_flagged", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("warnings", JSONB, nullable=False, server_default="[]"),
    sa.Column("failure_reason", sa.Text),
    sa.Column("recorded_at", TS, nullable=False),
    sa.Column("closed_at", TS),
    sa.Column("closed_by", sa.Text),
    sa.Column("actioned_by", sa.Text),  # AC20: the access team member
    sa.Column("actioned_at", TS),
    sa.Column("refused_reason", sa.Text),
    sa.Column("position_id", sa.Text),  # a removal: the position and record it ends
    sa.Column("grant_id", UUID(as_uuid=True)),
    sa.Column("successor_position_id", sa.Text),
    sa.Column("absent_user_id", sa.Text),  # AC21
    sa.Column("scheduled_for", TS),  # AC21: the access team's time scale
    sa.Index("ix_access_p30s_state", "state"),
)

# AC16: the removal saga, one row per release asked of allocation.
# state: requested | released | failed (a failed one may be followed by a retry).
releases = sa.Table(
    "releases",
    metadata,
    sa.Column("release_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("position_id", sa.Text, nullable=False, index=True),
    sa.Column("grant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("p30_id", UUID(as_uuid=True), nullable=False),
    sa.Column("successor_position_id", sa.Text),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("moved", JSONB, nullable=False, server_default="[]"),
    sa.Column("requested_at", TS, nullable=False),
    sa.Column("completed_at", TS),
)

# Who holds which work, projected from allocation.events (AC18's views).
work_items = sa.Table(
    "work_items",
    metadata,
    sa.Column("work_item_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("step_type", sa.Text),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("owner_kind", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_access_work_owner", "owner_kind", "owner_id"),
)


def _upsert_all(table: sa.Table, key: str) -> Any:
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={c.name: stmt.excluded[c.name] for c in table.c if c.name != key},
    )


# Statements handlers stage (written together with the batch's other rows of their kind).
INSERT_P30 = p30s.insert()
INSERT_GRANT = grants.insert()
INSERT_DIRECTORY_CHANGE = directory_changes.insert()
UPSERT_POSITION = _upsert_all(positions, "position_id")


def upsert(table: sa.Table, key: str, values: dict[str, Any]) -> Any:
    stmt = insert(table).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[table.c[key]], set_={k: stmt.excluded[k] for k in values if k != key}
    )


_UNITS_MEMO = "access_units"


async def all_units(conn: AsyncConnection) -> dict[str, Unit]:
    """The case-group hierarchy, read once per consumed batch (the batch's connection keeps it
    in its memo until a directory load changes it: `forget_units`)."""
    memo: dict[str, Any] | None = getattr(conn, "memo", None)
    if memo is not None and _UNITS_MEMO in memo:
        return memo[_UNITS_MEMO]  # type: ignore[no-any-return]
    rows = await conn.execute(sa.select(units))
    found = {
        r.unit_id: Unit(
            unit_id=r.unit_id,
            name=r.name,
            parent_id=r.parent_id,
            code=r.code,
            functionally_unique=r.functionally_unique,
            kind=r.kind,
        )
        for r in rows
    }
    if memo is not None:
        memo[_UNITS_MEMO] = found
    return found


def forget_units(conn: AsyncConnection) -> None:
    memo: dict[str, Any] | None = getattr(conn, "memo", None)
    if memo is not None:
        memo.pop(_UNITS_MEMO, None)


# One key for every directory load: loads are applied one at a time across instances (TR03's
# checks, such as one primary position per user, hold for users no row exists for yet).
_DIRECTORY_LOCK = 0x41434353_54523033  # "ACCS" "TR03"


async def directory(
    conn: AsyncConnection, unit_ids: list[str], user_ids: list[str], position_ids: list[str]
) -> Directory:
    """What a directory load is decided against, for the transaction: the directory lock (only
    directory loads change primary positions, so their rows need no other lock), the named
    positions, the rows of every user named or holding a named position, locked as secondary
    grants lock them (AC01/AC02 are checked against what they hold), and all the positions (any
    kind, not removed) of those users, read once those locks are held."""
    lock = sa.func.pg_advisory_xact_lock(sa.literal(_DIRECTORY_LOCK, sa.BigInteger))
    await conn.execute(sa.select(lock))
    named = (
        (
            await conn.execute(
                sa.select(positions).where(positions.c.position_id.in_(position_ids))
            )
        ).all()
        if position_ids
        else []
    )
    people = sorted({*user_ids, *(r.user_id for r in named)})
    user_rows = (
        (
            await conn.execute(
                sa.select(users)
                .where(users.c.user_id.in_(people))
                .order_by(users.c.user_id)
                .with_for_update()
            )
        ).all()
        if people
        else []
    )
    held = (
        (
            await conn.execute(
                sa.select(positions).where(
                    positions.c.user_id.in_(people), positions.c.state != "removed"
                )
            )
        ).all()
        if people
        else []
    )
    unit_rows = (
        (await conn.execute(sa.select(units).where(units.c.unit_id.in_(unit_ids)))).all()
        if unit_ids
        else []
    )
    return Directory(
        units=await all_units(conn),
        unit_rows={r.unit_id: dict(r._mapping) for r in unit_rows},
        users={r.user_id: dict(r._mapping) for r in user_rows},
        positions={
            r.position_id: DirectoryPosition(
                position_id=r.position_id,
                user_id=r.user_id,
                unit_id=r.unit_id,
                role=Role(r.role),
                kind=AccessKind(r.kind),
                state=r.state,
            )
            for r in [*named, *held]
        },
    )


async def holdings(
    conn: AsyncConnection, user_id: str | None, *, lock: bool = False
) -> Holdings | None:
    """A user's positions with the number of active records backing each; `lock` holds the
    user's row so that limits are checked and written in one transaction (AC01, AC02)."""
    if not user_id:
        return None
    backing = (
        sa.select(sa.func.count())
        .where(grants.c.position_id == positions.c.position_id, grants.c.state == "active")
        .scalar_subquery()
    )
    emergency = (
        sa.select(grants.c.grant_id)
        .where(
            grants.c.position_id == positions.c.position_id,
            grants.c.state == "active",
            grants.c.emergency,
        )
        .exists()
    )
    query = (
        sa.select(
            users.c.user_id.label("holder_id"),
            users.c.security_clearance,
            users.c.line_manager_id,
            users.c.current_position_id,
            positions.c.position_id,
            positions.c.unit_id,
            positions.c.role,
            positions.c.kind,
            positions.c.state,
            positions.c.release_failed,
            backing.label("backing"),
            emergency.label("emergency"),
        )
        .select_from(
            users.outerjoin(
                positions,
                (positions.c.user_id == users.c.user_id) & (positions.c.state != "removed"),
            )
        )
        .where(users.c.user_id == user_id)
        .order_by(positions.c.granted_at, positions.c.position_id)
    )
    rows = (await conn.execute(query.with_for_update(of=users) if lock else query)).all()
    if not rows:
        return None
    first = rows[0]
    return Holdings(
        user_id=first.holder_id,
        security_clearance=first.security_clearance,
        line_manager_id=first.line_manager_id,
        current_position_id=first.current_position_id,
        positions=tuple(
            Holding(
                Position(
                    position_id=r.position_id,
                    user_id=first.holder_id,
                    unit_id=r.unit_id,
                    role=Role(r.role),
                    kind=AccessKind(r.kind),
                    emergency=bool(r.emergency),
                ),
                backing=r.backing,
                removal_pending=r.state == "removal_pending",
                release_failed=r.release_failed,
            )
            for r in rows
            if r.position_id is not None
        ),
    )


async def line_manager(conn: AsyncConnection, user_id: str | None) -> str | None:
    if not user_id:
        return None
    value = await conn.scalar(sa.select(users.c.line_manager_id).where(users.c.user_id == user_id))
    return str(value) if value else None


async def p30(conn: AsyncConnection, p30_id: uuid.UUID, *, lock: bool = False) -> Any:
    query = sa.select(p30s).where(p30s.c.p30_id == p30_id)
    return (await conn.execute(query.with_for_update() if lock else query)).first()


async def failed_release(conn: AsyncConnection, position_id: str) -> Any:
    """The latest failed release of a position whose removal is still pending (AC16)."""
    query = (
        sa.select(releases)
        .where(releases.c.position_id == position_id, releases.c.state == "failed")
        .order_by(releases.c.requested_at.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def release(conn: AsyncConnection, release_id: uuid.UUID) -> Any:
    query = sa.select(releases).where(releases.c.release_id == release_id).with_for_update()
    return (await conn.execute(query)).first()


async def managers_of(conn: AsyncConnection, unit_ids: list[str]) -> list[str]:
    """Users holding a primary TL/SM position in any of these units (AC08's responsible)."""
    rows = await conn.execute(
        sa.select(positions.c.user_id)
        .where(
            positions.c.unit_id.in_(unit_ids),
            positions.c.kind == AccessKind.PRIMARY.value,
            positions.c.state == "active",
            positions.c.role.in_([Role.TEAM_LEADER.value, Role.SEGMENT_MANAGER.value]),
        )
        .distinct()
        .order_by(positions.c.user_id)
    )
    return [r.user_id for r in rows]


P30_EXTRA_COLUMNS = (
    "actioned_by",
    "actioned_at",
    "position_id",
    "grant_id",
    "successor_position_id",
    "absent_user_id",
)


def p30_values(
    *,
    p30_id: uuid.UUID,
    user_id: str,
    action: str,
    kind: AccessKind,
    unit_ids: list[str],
    requested_by: str,
    approved_by: str | None,
    reason: str,
    discussion_held: bool,
    discussed_with: str | None,
    state: str,
    emergency: bool,
    deadline: datetime | None,
    warnings: list[str],
    now: datetime,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "p30_id": p30_id,
        "user_id": user_id,
        "action": action,
        "kind": kind.value,
        "unit_ids": unit_ids,
        "requested_by": requested_by,
        "approved_by": approved_by,
        "reason": reason,
        "discussion_held": discussion_held,
        "discussed_with": discussed_with,
        "state": state,
        "emergency": emergency,
        "deadline": deadline,
        "warnings": warnings,
        "recorded_at": now,
        # Every row names every column, so that staged rows of one batch go out together.
        **{column: extra.get(column) for column in P30_EXTRA_COLUMNS},
    }


async def unit_holders(conn: AsyncConnection, unit_id: str) -> list[tuple[str, Role]]:
    """Who holds a position (any kind, not removed) in the unit, with its role (AC21)."""
    rows = await conn.execute(
        sa.select(positions.c.user_id, positions.c.role)
        .where(positions.c.unit_id == unit_id, positions.c.state != "removed")
        .order_by(positions.c.user_id)
    )
    return [(r.user_id, Role(r.role)) for r in rows]
