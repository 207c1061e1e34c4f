"""The writes that carry out a decided grant or removal, shared by the handlers (a command) and
the access scheduler (a scheduled emergency grant, AC21; a lapsed review, AC22), so that both
paths write the same rows and publish the same events. Nothing here decides: the domain has."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import Event
from contracts.access import (
    AccessGrantEnded,
    AccessGrantRecorded,
    AccessKind,
    EmergencyAccessGranted,
    P30Recorded,
    PositionGranted,
    PositionReleaseRequested,
    Role,
)
from services.access import domain, store
from services.access.domain import Held, Holdings

Stage = Callable[[Any, dict[str, Any], tuple[str, ...]], None]


@dataclass
class Writer:
    """Where the writes go: a handler's batch connection (with its staged inserts) or a unit of
    work's. `seed` makes the ids of what is written the same when the cause is replayed."""

    conn: Any
    now: datetime
    seed: uuid.UUID
    emit: Callable[[Event], object]
    actor_id: str
    staged: Stage | None = None

    async def stage(
        self, statement: Any, row: dict[str, Any], dedupe_on: tuple[str, ...] = ()
    ) -> None:
        if self.staged is not None:
            self.staged(statement, row, dedupe_on)
        else:
            await self.conn.execute(statement, [row])

    def id(self, name: str) -> uuid.UUID:
        return uuid.uuid5(self.seed, name)


async def record_p30(w: Writer, **values: Any) -> uuid.UUID:
    """AC04: the P30 record, written in the transaction of what it covers."""
    row = store.p30_values(now=w.now, **values)
    await w.stage(store.INSERT_P30, row)
    w.emit(
        P30Recorded(
            p30_id=row["p30_id"],
            user_id=row["user_id"],
            action=row["action"],
            kind=values["kind"],
            unit_ids=row["unit_ids"],
            requested_by=row["requested_by"],
            approved_by=row["approved_by"],
            actioned_by=row["actioned_by"],
            reason=row["reason"],
            discussion_held=row["discussion_held"],
            discussed_with=row["discussed_with"],
            state=row["state"],
            emergency=row["emergency"],
            deadline=row["deadline"],
            warnings=row["warnings"],
            recorded_at=w.now,
        )
    )
    return uuid.UUID(str(row["p30_id"]))


async def update_p30(w: Writer, p30_id: uuid.UUID, **values: Any) -> None:
    p = store.p30s
    await w.conn.execute(p.update().where(p.c.p30_id == p30_id).values(**values))


async def grant(
    w: Writer,
    user: Holdings,
    unit_id: str,
    kind: AccessKind,
    p30_id: uuid.UUID,
    *,
    emergency: bool = False,
    warnings: tuple[str, ...] = (),
) -> str:
    """Adds a record backing the user's position in the unit; the position is granted (and
    published) only if the user did not already hold it."""
    position_id = domain.secondary_position_id(user.user_id, unit_id)
    primary = user.primary
    assert primary is not None
    role: Role = primary.role
    if user.held(unit_id) is None:
        await w.stage(
            store.UPSERT_POSITION,
            {
                "position_id": position_id,
                "user_id": user.user_id,
                "unit_id": unit_id,
                "role": role.value,
                "kind": kind.value,
                "state": "active",
                "release_failed": False,
                "granted_at": w.now,
                "removed_at": None,
            },
            ("position_id",),
        )
        w.emit(
            PositionGranted(
                user_id=user.user_id,
                position_id=position_id,
                unit_id=unit_id,
                role=role,
                kind=kind,
                p30_id=p30_id,
                emergency=emergency,
            )
        )
    grant_id = uuid.uuid5(p30_id, f"grant:{unit_id}")  # one record per P30 and position
    due = domain.review_due(w.now) if kind is AccessKind.ABSENCE else None
    await w.stage(
        store.INSERT_GRANT,
        {
            "grant_id": grant_id,
            "user_id": user.user_id,
            "position_id": position_id,
            "kind": kind.value,
            "p30_id": p30_id,
            "emergency": emergency,
            "state": "active",
            "granted_at": w.now,
            "review_due_at": due,
        },
    )
    w.emit(
        AccessGrantRecorded(
            grant_id=grant_id,
            user_id=user.user_id,
            position_id=position_id,
            unit_id=unit_id,
            kind=kind,
            p30_id=p30_id,
            emergency=emergency,
            review_due_at=due,
            warnings=list(warnings),
        )
    )
    return position_id


async def grant_emergency(
    w: Writer, user: Holdings, record: Any, *, actioned_by: str
) -> EmergencyAccessGranted:
    """AC21: the emergency grant the access team makes (at once, or when its time scale comes):
    the P30 becomes outstanding with its working-day deadline (DL03) and the requester and user
    are told (NT04)."""
    (unit_id,) = record.unit_ids
    deadline = domain.p30_deadline(w.now)
    await update_p30(
        w,
        record.p30_id,
        state="outstanding",
        deadline=deadline,
        actioned_by=actioned_by,
        actioned_at=w.now,
    )
    position_id = await grant(w, user, unit_id, AccessKind.ABSENCE, record.p30_id, emergency=True)
    event = EmergencyAccessGranted(
        p30_id=record.p30_id,
        user_id=user.user_id,
        position_id=position_id,
        requested_by=record.requested_by,
        p30_deadline=deadline,
        actioned_by=actioned_by,
    )
    w.emit(event)
    return event


async def close_grant(w: Writer, grant_id: uuid.UUID, p30_id: uuid.UUID) -> None:
    g = store.grants
    await w.conn.execute(
        g.update()
        .where(g.c.grant_id == grant_id)
        .values(state="ended", ended_at=w.now, ended_by_p30_id=p30_id)
    )


async def end_grant(
    w: Writer, user_id: str, held: Held, grant_id: uuid.UUID, p30_id: uuid.UUID
) -> None:
    """Another record still justifies the position: only this record ends."""
    await close_grant(w, grant_id, p30_id)
    w.emit(
        AccessGrantEnded(
            grant_id=grant_id,
            user_id=user_id,
            position_id=held.position_id,
            p30_id=p30_id,
            position_kept=True,
        )
    )


async def request_release(
    w: Writer,
    user_id: str,
    held: Held,
    grant_id: uuid.UUID,
    p30_id: uuid.UUID,
    successor_position_id: str | None,
) -> None:
    """AC16 saga, first step: the position is pending removal until allocation answers."""
    release_id = w.id("release")
    pos = store.positions
    await w.conn.execute(
        pos.update()
        .where(pos.c.position_id == held.position_id)
        .values(state="removal_pending", release_failed=False)
    )
    await w.conn.execute(
        store.releases.insert().values(
            release_id=release_id,
            user_id=user_id,
            position_id=held.position_id,
            grant_id=grant_id,
            p30_id=p30_id,
            successor_position_id=successor_position_id,
            state="requested",
            requested_at=w.now,
        )
    )
    w.emit(
        PositionReleaseRequested(
            release_id=release_id,
            user_id=user_id,
            position_id=held.position_id,
            successor_position_id=successor_position_id,
        )
    )


async def carry_out_removal(
    w: Writer,
    user_id: str,
    held: Held,
    grant_id: uuid.UUID,
    p30_id: uuid.UUID,
    successor_position_id: str | None,
    *,
    release: bool,
) -> None:
    """AC16: the last record's removal releases the position's work first; otherwise only the
    record ends and the P30 is complete at once."""
    if release:
        await request_release(w, user_id, held, grant_id, p30_id, successor_position_id)
    else:
        await end_grant(w, user_id, held, grant_id, p30_id)
