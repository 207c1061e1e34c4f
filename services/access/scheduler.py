"""The background scan: six-monthly reviews falling due or overdue (AC09) and emergency P30s
past their deadline (AC11). `scan(work)` takes its time from the unit of work, so tests drive
the clock explicitly; the task runs it periodically with the runtime's clock."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from contracts.access import AbsenceReviewDue, AbsenceReviewOverdue, EmergencyP30Overdue
from services.access import domain, store
from services.shared import logs
from services.shared.runtime import ServiceRuntime, UnitOfWork

log = logs.get(__name__)
SCAN_SECONDS = 60.0


async def _responsible(work: UnitOfWork, user_id: str) -> list[str]:
    """AC08: the primary TL/SMs of the user's primary segment answer for the review."""
    conn = work.conn
    holdings = await store.holdings(conn, user_id)
    primary = holdings.primary if holdings else None
    if primary is None:
        return []
    units = await store.all_units(conn)
    managers = await store.managers_of(conn, domain.chain(units, primary.unit_id))
    return [u for u in managers if u != user_id]


async def scan(work: UnitOfWork) -> int:
    """Flags what fell due as of `work.now`; each flag is raised once. Returns how many."""
    conn, now, flagged = work.conn, work.now, 0
    g, p = store.grants, store.p30s
    horizon = now + domain.REVIEW_NOTICE
    rows = await conn.execute(
        sa.select(g)
        .where(
            g.c.state == "active",
            g.c.kind == "absence-related",
            g.c.review_due_at <= horizon,
            sa.not_(g.c.review_overdue_flagged),
        )
        .with_for_update(skip_locked=True)
    )
    for row in rows.all():
        flag = domain.review_flag(
            row.review_due_at,
            now,
            due_flagged=row.review_due_flagged,
            overdue_flagged=row.review_overdue_flagged,
        )
        if flag is None:
            continue
        responsible = await _responsible(work, row.user_id)
        if flag == "due":
            await conn.execute(
                g.update().where(g.c.grant_id == row.grant_id).values(review_due_flagged=True)
            )
            work.emit(
                AbsenceReviewDue(
                    grant_id=row.grant_id,
                    user_id=row.user_id,
                    position_id=row.position_id,
                    review_due_at=row.review_due_at,
                    responsible=responsible,
                )
            )
        else:
            await conn.execute(
                g.update()
                .where(g.c.grant_id == row.grant_id)
                .values(review_due_flagged=True, review_overdue_flagged=True)
            )
            escalate = [m for m in [await store.line_manager(conn, r) for r in responsible] if m]
            work.emit(
                AbsenceReviewOverdue(
                    grant_id=row.grant_id,
                    user_id=row.user_id,
                    position_id=row.position_id,
                    review_due_at=row.review_due_at,
                    responsible=responsible,
                    escalate_to=sorted(set(escalate)),
                )
            )
        flagged += 1
    outstanding = await conn.execute(
        sa.select(p)
        .where(
            p.c.state == "outstanding",
            p.c.emergency,
            p.c.deadline <= now,
            sa.not_(p.c.overdue_flagged),
        )
        .with_for_update(skip_locked=True)
    )
    for row in outstanding.all():
        if not domain.p30_overdue(row.deadline, now, flagged=row.overdue_flagged):
            continue
        await conn.execute(p.update().where(p.c.p30_id == row.p30_id).values(overdue_flagged=True))
        work.emit(
            EmergencyP30Overdue(
                p30_id=row.p30_id,
                user_id=row.user_id,
                requested_by=row.requested_by,
                escalate_to=await store.line_manager(conn, row.requested_by),
                deadline=row.deadline,
            )
        )
        flagged += 1
    return flagged


async def run(runtime: ServiceRuntime) -> None:
    """The periodic task (ServiceSpec.tasks)."""
    while True:
        try:
            async with runtime.unit_of_work() as work:
                await scan(work)
        except Exception:
            log.exception("review and P30 scan failed; retrying at the next tick")
        await asyncio.sleep(SCAN_SECONDS)
