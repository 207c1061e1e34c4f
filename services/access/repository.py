"""Access's repositories: they load the aggregates (a user's `Holdings`, P30 records, the
directory a load is decided against) with the facts their decisions need, and write a decided
`Change` in one place, on the transaction (staged inserts go out with the batch's others).

`Repositories.sql(tx)` is what the service runs on; handler unit tests give the handlers fakes
with the same methods (tests/access/fakes.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from contracts.access import AccessKind, LoadDirectory, Role
from services.access import store
from services.access.domain import Directory, DirectoryPlan, Facts, Holdings, Unit
from services.access.records import P30, Change, Grant, Release
from services.shared.transaction import Transaction


class HoldingsRepository(Protocol):
    """Users' holdings, the records backing them and the releases of the removal saga."""

    async def get(self, user_id: str | None, *, lock: bool = False) -> Holdings | None: ...

    async def units(self) -> Mapping[str, Unit]: ...

    async def unit_holders(self, unit_id: str) -> list[tuple[str, Role]]: ...

    async def line_manager(self, user_id: str | None) -> str | None: ...

    async def managers_of(self, unit_ids: list[str]) -> list[str]: ...

    async def grant(self, grant_id: uuid.UUID | None) -> Grant | None: ...

    async def active_grant(self, position_id: str, kind: AccessKind) -> Grant | None: ...

    async def failed_release(self, position_id: str) -> Release | None: ...

    async def release(self, release_id: uuid.UUID) -> Release | None: ...

    async def reviews_to_flag(self, horizon: datetime) -> list[Grant]: ...

    async def reviews_to_lapse(self) -> list[Grant]: ...

    async def save(self, change: Change) -> None: ...


class P30Repository(Protocol):
    """The P30 records (AC04)."""

    async def get(self, p30_id: uuid.UUID | None, *, lock: bool = False) -> P30 | None: ...

    async def scheduled_due(self, now: datetime) -> list[P30]: ...

    async def emergencies_overdue(self, now: datetime) -> list[P30]: ...

    async def save(self, change: Change) -> None: ...


class DirectoryRepository(Protocol):
    """The directory access is the source of truth for (TR03)."""

    async def current(self, load: LoadDirectory) -> Directory: ...

    async def save(
        self, load: LoadDirectory, plan: DirectoryPlan, *, command_id: uuid.UUID, changed_by: str
    ) -> None: ...


@dataclass
class Repositories:
    holdings: HoldingsRepository
    p30s: P30Repository
    directory: DirectoryRepository

    @classmethod
    def sql(cls, tx: Transaction) -> Repositories:
        return cls(SqlHoldings(tx), SqlP30s(tx), SqlDirectory(tx))

    async def facts(self, actor_id: str, now: datetime, seed: uuid.UUID) -> Facts:
        """Who acts and the hierarchy, for a decision at `now` seeded by `seed`."""
        actor = await self.holdings.get(actor_id or None)
        return Facts(actor_id, actor, await self.holdings.units(), now, seed)

    async def save(self, change: Change) -> None:
        """The change, whole: its P30 records, then the positions, records and releases."""
        await self.p30s.save(change)
        await self.holdings.save(change)


# --- On the database -----------------------------------------------------------------------


def _grant(row: Any) -> Grant:
    return Grant(
        grant_id=row.grant_id,
        user_id=row.user_id,
        position_id=row.position_id,
        kind=AccessKind(row.kind),
        p30_id=row.p30_id,
        emergency=row.emergency,
        state=row.state,
        granted_at=row.granted_at,
        review_due_at=row.review_due_at,
        review_due_flagged=row.review_due_flagged,
        review_overdue_flagged=row.review_overdue_flagged,
    )


def _release(row: Any) -> Release:
    return Release(
        release_id=row.release_id,
        user_id=row.user_id,
        position_id=row.position_id,
        grant_id=row.grant_id,
        p30_id=row.p30_id,
        successor_position_id=row.successor_position_id,
        state=row.state,
        requested_at=row.requested_at,
        moved=tuple(row.moved or ()),
    )


def _p30(row: Any) -> P30:
    return P30(
        p30_id=row.p30_id,
        user_id=row.user_id,
        action=row.action,
        kind=AccessKind(row.kind),
        unit_ids=tuple(row.unit_ids),
        requested_by=row.requested_by,
        approved_by=row.approved_by,
        reason=row.reason,
        discussion_held=row.discussion_held,
        discussed_with=row.discussed_with,
        state=row.state,
        emergency=row.emergency,
        deadline=row.deadline,
        warnings=tuple(row.warnings),
        recorded_at=row.recorded_at,
        actioned_by=row.actioned_by,
        actioned_at=row.actioned_at,
        position_id=row.position_id,
        grant_id=row.grant_id,
        successor_position_id=row.successor_position_id,
        absent_user_id=row.absent_user_id,
        scheduled_for=row.scheduled_for,
        overdue_flagged=row.overdue_flagged,
    )


class SqlHoldings:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, user_id: str | None, *, lock: bool = False) -> Holdings | None:
        return await store.holdings(self.tx.conn, user_id, lock=lock)

    async def units(self) -> Mapping[str, Unit]:
        return await store.all_units(self.tx.conn)

    async def unit_holders(self, unit_id: str) -> list[tuple[str, Role]]:
        return await store.unit_holders(self.tx.conn, unit_id)

    async def line_manager(self, user_id: str | None) -> str | None:
        return await store.line_manager(self.tx.conn, user_id)

    async def managers_of(self, unit_ids: list[str]) -> list[str]:
        return await store.managers_of(self.tx.conn, unit_ids)

    async def grant(self, grant_id: uuid.UUID | None) -> Grant | None:
        if grant_id is None:
            return None
        g = store.grants
        row = (await self.tx.execute(sa.select(g).where(g.c.grant_id == grant_id))).first()
        return _grant(row) if row else None

    async def active_grant(self, position_id: str, kind: AccessKind) -> Grant | None:
        """The newest active record of this kind backing the position."""
        g = store.grants
        row = (
            await self.tx.execute(
                sa.select(g)
                .where(
                    g.c.position_id == position_id, g.c.kind == kind.value, g.c.state == "active"
                )
                .order_by(g.c.emergency.desc(), g.c.granted_at.desc())
                .limit(1)
            )
        ).first()
        return _grant(row) if row else None

    async def failed_release(self, position_id: str) -> Release | None:
        row = await store.failed_release(self.tx.conn, position_id)
        return _release(row) if row else None

    async def release(self, release_id: uuid.UUID) -> Release | None:
        row = await store.release(self.tx.conn, release_id)
        return _release(row) if row else None

    async def reviews_to_flag(self, horizon: datetime) -> list[Grant]:
        """AC09: active absence-related records due by `horizon` not yet escalated, locked
        (skipping those another scan holds)."""
        g = store.grants
        rows = await self.tx.execute(
            sa.select(g)
            .where(
                g.c.state == "active",
                g.c.kind == AccessKind.ABSENCE.value,
                g.c.review_due_at <= horizon,
                sa.not_(g.c.review_overdue_flagged),
            )
            .with_for_update(skip_locked=True)
        )
        return [_grant(r) for r in rows.all()]

    async def reviews_to_lapse(self) -> list[Grant]:
        """AC22: escalated absence-related records not yet removed for it, locked."""
        g = store.grants
        rows = await self.tx.execute(
            sa.select(g)
            .where(
                g.c.state == "active",
                g.c.kind == AccessKind.ABSENCE.value,
                g.c.review_overdue_flagged,
                g.c.lapsed_p30_id.is_(None),
            )
            .with_for_update(skip_locked=True)
        )
        return [_grant(r) for r in rows.all()]

    async def save(self, change: Change) -> None:
        tx, pos, g, r, u = self.tx, store.positions, store.grants, store.releases, store.users
        for position, granted_at in change.granted:
            tx.stage(
                store.UPSERT_POSITION,
                {
                    "position_id": position.position_id,
                    "user_id": position.user_id,
                    "unit_id": position.unit_id,
                    "role": str(position.role),
                    "kind": str(position.kind),
                    "state": "active",
                    "release_failed": False,
                    "granted_at": granted_at,
                    "removed_at": None,
                },
                ("position_id",),
            )
        for grant in change.grants:
            tx.stage(
                store.INSERT_GRANT,
                {
                    "grant_id": grant.grant_id,
                    "user_id": grant.user_id,
                    "position_id": grant.position_id,
                    "kind": grant.kind.value,
                    "p30_id": grant.p30_id,
                    "emergency": grant.emergency,
                    "state": grant.state,
                    "granted_at": grant.granted_at,
                    "review_due_at": grant.review_due_at,
                },
            )
        for grant_id, values in change.grant_updates:
            await tx.execute(g.update().where(g.c.grant_id == grant_id).values(**values))
        for position_id, values in change.positions:
            await tx.execute(pos.update().where(pos.c.position_id == position_id).values(**values))
        for release in change.releases:
            await tx.execute(
                r.insert().values(
                    release_id=release.release_id,
                    user_id=release.user_id,
                    position_id=release.position_id,
                    grant_id=release.grant_id,
                    p30_id=release.p30_id,
                    successor_position_id=release.successor_position_id,
                    state=release.state,
                    requested_at=release.requested_at,
                )
            )
        for release_id, values in change.release_updates:
            await tx.execute(r.update().where(r.c.release_id == release_id).values(**values))
        for current in change.current:
            where = u.c.user_id == current.user_id
            if current.only_if is not None:
                where = where & (u.c.current_position_id == current.only_if)
            await tx.execute(
                u.update().where(where).values(current_position_id=current.position_id)
            )


class SqlP30s:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, p30_id: uuid.UUID | None, *, lock: bool = False) -> P30 | None:
        if p30_id is None:
            return None
        row = await store.p30(self.tx.conn, p30_id, lock=lock)
        return _p30(row) if row else None

    async def scheduled_due(self, now: datetime) -> list[P30]:
        """AC21: emergency grants the access team scheduled for `now` or before, locked."""
        p = store.p30s
        rows = await self.tx.execute(
            sa.select(p)
            .where(p.c.state == "scheduled", p.c.scheduled_for <= now)
            .with_for_update(skip_locked=True)
        )
        return [_p30(r) for r in rows.all()]

    async def emergencies_overdue(self, now: datetime) -> list[P30]:
        """AC11: outstanding emergency P30s past their deadline not yet flagged, locked."""
        p = store.p30s
        rows = await self.tx.execute(
            sa.select(p)
            .where(
                p.c.state == "outstanding",
                p.c.emergency,
                p.c.deadline <= now,
                sa.not_(p.c.overdue_flagged),
            )
            .with_for_update(skip_locked=True)
        )
        return [_p30(r) for r in rows.all()]

    async def save(self, change: Change) -> None:
        p = store.p30s
        for record in change.recorded:
            self.tx.stage(
                store.INSERT_P30,
                store.p30_values(
                    p30_id=record.p30_id,
                    user_id=record.user_id,
                    action=record.action,
                    kind=record.kind,
                    unit_ids=list(record.unit_ids),
                    requested_by=record.requested_by,
                    approved_by=record.approved_by,
                    reason=record.reason,
                    discussion_held=record.discussion_held,
                    discussed_with=record.discussed_with,
                    state=record.state,
                    emergency=record.emergency,
                    deadline=record.deadline,
                    warnings=list(record.warnings),
                    now=record.recorded_at,
                    actioned_by=record.actioned_by,
                    actioned_at=record.actioned_at,
                    position_id=record.position_id,
                    grant_id=record.grant_id,
                    successor_position_id=record.successor_position_id,
                    absent_user_id=record.absent_user_id,
                ),
            )
        for p30_id, values in change.p30s:
            await self.tx.execute(p.update().where(p.c.p30_id == p30_id).values(**values))


class SqlDirectory:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def current(self, load: LoadDirectory) -> Directory:
        return await store.directory(
            self.tx.conn,
            [u.unit_id for u in load.units],
            [*(u.user_id for u in load.users), *(p.user_id for p in load.positions)],
            [p.position_id for p in load.positions],
        )

    async def save(
        self, load: LoadDirectory, plan: DirectoryPlan, *, command_id: uuid.UUID, changed_by: str
    ) -> None:
        """Writes what the plan changes (only what changed) and the audit of each change, in
        the load's transaction (TR03)."""
        tx, pos = self.tx, store.positions
        units, users, positions = plan.of("unit"), plan.of("user"), plan.of("position")
        for unit in load.units:
            if unit.unit_id in units:
                values = unit.model_dump(mode="json")
                await tx.execute(store.upsert(store.units, "unit_id", values))
        if units:
            store.forget_units(tx.conn)
        for user in load.users:
            if user.user_id in users:
                await tx.execute(store.upsert(store.users, "user_id", user.model_dump(mode="json")))
        for position in load.positions:
            change = positions.get(position.position_id)
            if change is not None and change.action == "created":
                await tx.execute(
                    store.upsert(
                        pos,
                        "position_id",
                        {
                            "position_id": position.position_id,
                            "user_id": position.user_id,
                            "unit_id": position.unit_id,
                            "role": position.role.value,
                            "kind": AccessKind.PRIMARY.value,
                            "state": "active",
                            "granted_at": tx.now,
                        },
                    )
                )
            elif change is not None:
                await tx.execute(
                    pos.update()
                    .where(pos.c.position_id == position.position_id)
                    .values(
                        unit_id=position.unit_id,
                        role=position.role.value,
                        kind=AccessKind.PRIMARY.value,
                        state="active",
                        removed_at=None,
                    )
                )
        for change in plan.changes:
            tx.stage(
                store.INSERT_DIRECTORY_CHANGE,
                {
                    "change_id": plan.change_id(command_id, change),
                    "command_id": command_id,
                    "changed_by": changed_by,
                    "authority": list(plan.authority),
                    "changed_at": tx.now,
                    "entity": change.entity,
                    "entity_id": change.entity_id,
                    "action": change.action,
                    "before": dict(change.before) if change.before is not None else None,
                    "after": dict(change.after),
                },
            )
