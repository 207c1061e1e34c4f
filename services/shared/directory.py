"""A projection of the directory (units, users, positions) from `access.events`, kept by every
service that routes or authorises by position. Rebuilt by replaying the topic.

A service includes it with `directory_tables(metadata)`, `register(dispatcher, tables)` and, in
its first migration, `create_in_migration(schema)`. The projection owns the transaction's read
caches of directory facts: every directory event applied empties the transaction's memo, so
nothing read before it (by this module or a service's own lookups) is used after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import Actor
from contracts.access import PositionGranted, PositionRevoked, UnitDefined, UserRegistered
from services.shared.positions import Position
from services.shared.transaction import Dispatcher, HandlerContext

__all__ = ["Directory", "DirectoryTables", "Position", "directory_tables", "register"]
_ACTING = "directory.acting"


@dataclass(frozen=True)
class DirectoryTables:
    units: sa.Table
    users: sa.Table
    positions: sa.Table


def directory_tables(metadata: sa.MetaData) -> DirectoryTables:
    return DirectoryTables(
        units=sa.Table(
            "dir_units",
            metadata,
            sa.Column("unit_id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("parent_id", sa.Text),
            sa.Column("code", sa.Text),
            sa.Column("hopper_id", sa.Text),
        ),
        users=sa.Table(
            "dir_users",
            metadata,
            sa.Column("user_id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("email", sa.Text),
            sa.Column("line_manager_id", sa.Text),
            sa.Column("security_clearance", sa.Boolean, nullable=False, server_default="false"),
        ),
        positions=sa.Table(
            "dir_positions",
            metadata,
            sa.Column("position_id", sa.Text, primary_key=True),
            sa.Column("user_id", sa.Text, nullable=False, index=True),
            sa.Column("unit_id", sa.Text, nullable=False, index=True),
            sa.Column("role", sa.Text, nullable=False),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("emergency", sa.Boolean, nullable=False, server_default="false"),
            sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        ),
    )


def create_in_migration(schema: str) -> None:
    """Called from a service's migration to create its directory projection tables."""
    metadata = sa.MetaData(schema=schema)
    t = directory_tables(metadata)
    metadata.create_all(bind=op.get_bind(), tables=[t.units, t.users, t.positions])


def _upsert(table: sa.Table, key: str, values: dict[str, Any]) -> Any:
    stmt = insert(table).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[table.c[key]], set_={k: stmt.excluded[k] for k in values if k != key}
    )


def register(dispatcher: Dispatcher, tables: DirectoryTables) -> None:
    """Adds the projection's handlers for the directory events to a service's dispatcher."""

    @dispatcher.on(UnitDefined)
    async def unit_defined(ctx: HandlerContext[UnitDefined]) -> None:
        m = ctx.message
        await ctx.execute(
            _upsert(
                tables.units,
                "unit_id",
                {
                    "unit_id": m.unit_id,
                    "name": m.name,
                    "kind": m.kind.value,
                    "parent_id": m.parent_id,
                    "code": m.code,
                    "hopper_id": m.hopper_id,
                },
            )
        )

    @dispatcher.on(UserRegistered)
    async def user_registered(ctx: HandlerContext[UserRegistered]) -> None:
        m = ctx.message
        await ctx.execute(
            _upsert(
                tables.users,
                "user_id",
                {
                    "user_id": m.user_id,
                    "name": m.name,
                    "email": m.email,
                    "line_manager_id": m.line_manager_id,
                    "security_clearance": m.security_clearance,
                },
            )
        )

    @dispatcher.on(PositionGranted)
    async def position_granted(ctx: HandlerContext[PositionGranted]) -> None:
        m = ctx.message
        await ctx.execute(
            _upsert(
                tables.positions,
                "position_id",
                {
                    "position_id": m.position_id,
                    "user_id": m.user_id,
                    "unit_id": m.unit_id,
                    "role": m.role.value,
                    "kind": m.kind.value,
                    "emergency": m.emergency,
                    "active": True,
                },
            )
        )

    @dispatcher.on(PositionRevoked)
    async def position_revoked(ctx: HandlerContext[PositionRevoked]) -> None:
        p = tables.positions
        await ctx.execute(
            p.update().where(p.c.position_id == ctx.message.position_id).values(active=False)
        )

    for message_type in (UnitDefined, UserRegistered, PositionGranted, PositionRevoked):
        dispatcher.add(message_type.TYPE, _forget)


async def _forget(ctx: HandlerContext[Any]) -> None:
    """The directory changed in this transaction: cached reads of it are stale from here on."""
    ctx.memo.clear()


class Directory:
    """Read access to the projection."""

    def __init__(self, tables: DirectoryTables) -> None:
        self.t = tables

    async def position(
        self, conn: AsyncConnection, position_id: str | None, *, active_only: bool = True
    ) -> Position | None:
        if not position_id:
            return None
        p = self.t.positions
        query = sa.select(p).where(p.c.position_id == position_id)
        if active_only:
            query = query.where(p.c.active.is_(True))
        row = (await conn.execute(query)).first()
        return _position(row) if row else None

    async def acting_position(self, conn: Any, actor: Actor | None) -> Position | None:
        """The position a command's actor acts in (AL10-style checks): their current position
        when the directory says they hold it and it is active, else None. Remembered for the
        transaction (a batch of one person's commands reads it once)."""
        if actor is None or not actor.position_id:
            return None
        memo: dict[Any, Any] = getattr(conn, "memo", {})
        key = (_ACTING, actor.position_id)
        if key not in memo:
            held = await self.position(conn, actor.position_id)
            memo[key] = held
        held = memo[key]
        return held if held is not None and held.user_id == actor.user_id else None

    async def positions_of(self, conn: AsyncConnection, user_id: str) -> list[Position]:
        p = self.t.positions
        rows = await conn.execute(
            sa.select(p).where(p.c.user_id == user_id, p.c.active.is_(True)).order_by(p.c.kind)
        )
        return [_position(r) for r in rows]

    async def members(
        self, conn: AsyncConnection, unit_id: str, roles: set[str] | None = None
    ) -> list[Position]:
        p = self.t.positions
        query = sa.select(p).where(p.c.unit_id == unit_id, p.c.active.is_(True))
        if roles:
            query = query.where(p.c.role.in_(roles))
        return [_position(r) for r in await conn.execute(query)]

    async def unit(self, conn: AsyncConnection, unit_id: str) -> dict[str, Any] | None:
        u = self.t.units
        row = (await conn.execute(sa.select(u).where(u.c.unit_id == unit_id))).first()
        return dict(row._mapping) if row else None

    async def user(self, conn: AsyncConnection, user_id: str) -> dict[str, Any] | None:
        u = self.t.users
        row = (await conn.execute(sa.select(u).where(u.c.user_id == user_id))).first()
        return dict(row._mapping) if row else None


def _position(row: Any) -> Position:
    return Position(
        position_id=row.position_id,
        user_id=row.user_id,
        unit_id=row.unit_id,
        role=row.role,
        kind=row.kind,
        emergency=row.emergency,
        active=row.active,
    )
