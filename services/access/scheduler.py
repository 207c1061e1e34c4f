"""The access scheduler: six-monthly reviews falling due or overdue (AC09) and, under the
`remove` policy, lapsed after a grace period (AC22); emergency grants the access team scheduled
for later (AC21); emergency P30s past their deadline (AC11). `scan(work)` takes its time from
the unit of work, so tests drive the clock explicitly; the task runs it periodically with the
runtime's clock."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.access import (
    AbsenceReviewDue,
    AbsenceReviewLapsed,
    AbsenceReviewOverdue,
    AccessKind,
    EmergencyP30Overdue,
    P30Refused,
)
from services.access import actions, domain, store
from services.shared import logs
from services.shared.rules import RuleViolation
from services.shared.runtime import ServiceRuntime
from services.shared.transaction import Transaction

log = logs.get(__name__)
SCAN_SECONDS = 60.0
GRANT_POLL_SECONDS = 1.0  # AC21: how late a scheduled emergency grant may be made at most
SCHEDULER = "access-scheduler"  # who the P30 names for what the scheduler does (AC21, AC22)


class ReviewPolicy(BaseSettings):
    """AC22: CASEWORK_OVERDUE_REVIEW_POLICY=escalate|remove and the grace period, in working
    days after the review fell due (DL03), before a `remove` takes the access away."""

    model_config = SettingsConfigDict(env_prefix="CASEWORK_", extra="ignore")

    overdue_review_policy: domain.OverdueReviewPolicy = domain.OverdueReviewPolicy.ESCALATE
    overdue_review_grace_working_days: int = Field(default=10, ge=0)


async def _responsible(work: Transaction, user_id: str) -> list[str]:
    """AC08: the primary TL/SMs of the user's primary segment answer for the review."""
    conn = work.conn
    holdings = await store.holdings(conn, user_id)
    primary = holdings.primary if holdings else None
    if primary is None:
        return []
    units = await store.all_units(conn)
    managers = await store.managers_of(conn, domain.chain(units, primary.unit_id))
    return [u for u in managers if u != user_id]


def _writer(work: Transaction, seed: uuid.UUID) -> actions.Writer:
    return actions.Writer(
        conn=work.conn, now=work.now, seed=seed, emit=work.emit, actor_id=SCHEDULER
    )


async def grant_scheduled(work: Transaction) -> int:
    """AC21: the emergency grants whose time scale has come, made as the access team answered
    (the P30 names who answered); one that is no longer possible is refused with the rule."""
    p = store.p30s
    rows = await work.conn.execute(
        sa.select(p)
        .where(p.c.state == "scheduled", p.c.scheduled_for <= work.now)
        .with_for_update(skip_locked=True)
    )
    done = 0
    for row in rows.all():
        w = _writer(work, uuid.uuid5(row.p30_id, "scheduled grant"))
        user = await store.holdings(work.conn, row.user_id, lock=True)
        (unit_id,) = row.unit_ids
        try:
            if user is None:
                raise RuleViolation("AC01", f"unknown user {row.user_id!r}")
            domain.check_emergency_need(
                user.user_id,
                await store.holdings(work.conn, row.absent_user_id),
                unit_id,
                await store.unit_holders(work.conn, unit_id),
            )
            domain.recheck_grant(user, await store.all_units(work.conn), [unit_id])
        except RuleViolation as refused:
            reason = f"{refused.rule}: {refused.reason}"
            await actions.update_p30(
                w, row.p30_id, state="refused", refused_reason=reason, closed_at=work.now
            )
            work.emit(
                P30Refused(
                    p30_id=row.p30_id,
                    user_id=row.user_id,
                    requested_by=row.requested_by,
                    refused_by=SCHEDULER,
                    reason=reason,
                )
            )
        else:
            await actions.grant_emergency(w, user, row, actioned_by=row.actioned_by or SCHEDULER)
        done += 1
    return done


async def lapse_reviews(work: Transaction, policy: ReviewPolicy) -> int:
    """AC22: under the `remove` policy, an escalated review still unanswered after the grace
    period is removed through the AC16 release, with its own removal P30; never renewed."""
    if policy.overdue_review_policy is not domain.OverdueReviewPolicy.REMOVE:
        return 0
    g = store.grants
    rows = await work.conn.execute(
        sa.select(g)
        .where(
            g.c.state == "active",
            g.c.kind == AccessKind.ABSENCE.value,
            g.c.review_overdue_flagged,
            g.c.lapsed_p30_id.is_(None),
        )
        .with_for_update(skip_locked=True)
    )
    lapsed = 0
    for row in rows.all():
        if not domain.lapse_due(
            policy.overdue_review_policy,
            row.review_due_at,
            work.now,
            grace_working_days=policy.overdue_review_grace_working_days,
            overdue_flagged=row.review_overdue_flagged,
        ):
            continue
        user = await store.holdings(work.conn, row.user_id, lock=True)
        held = user.position(row.position_id) if user else None
        if user is None or held is None or held.removal_pending:
            continue  # already being removed by someone: that removal stands
        release = held.backing <= 1
        w = _writer(work, uuid.uuid5(row.grant_id, "lapsed review"))
        p30_id = await actions.record_p30(
            w,
            p30_id=w.id("p30"),
            user_id=user.user_id,
            action="removal",
            kind=AccessKind.ABSENCE,
            unit_ids=[held.unit_id],
            requested_by=SCHEDULER,
            approved_by=None,
            reason=(
                f"six-monthly review due {row.review_due_at:%Y-%m-%d} unanswered after "
                f"{policy.overdue_review_grace_working_days} working days: removed under the "
                "overdue-review policy (AC22)"
            ),
            discussion_held=False,
            discussed_with=None,
            state="pending" if release else "complete",
            emergency=False,
            deadline=None,
            warnings=[],
            actioned_by=SCHEDULER,
            actioned_at=work.now,
            position_id=held.position_id,
            grant_id=row.grant_id,
        )
        await work.conn.execute(
            g.update().where(g.c.grant_id == row.grant_id).values(lapsed_p30_id=p30_id)
        )
        work.emit(
            AbsenceReviewLapsed(
                grant_id=row.grant_id,
                user_id=user.user_id,
                position_id=held.position_id,
                review_due_at=row.review_due_at,
                p30_id=p30_id,
            )
        )
        await actions.carry_out_removal(
            w, user.user_id, held, row.grant_id, p30_id, None, release=release
        )
        lapsed += 1
    return lapsed


async def scan(work: Transaction, policy: ReviewPolicy | None = None) -> int:
    """Flags what fell due as of `work.now` (each flag once), makes the emergency grants whose
    time has come and removes lapsed reviews under the `remove` policy. Returns how many."""
    policy = policy or ReviewPolicy()
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
    flagged += await grant_scheduled(work)
    flagged += await lapse_reviews(work, policy)
    return flagged


async def run(runtime: ServiceRuntime) -> None:
    """The periodic task (ServiceSpec.tasks): the whole scan every SCAN_SECONDS and, between
    scans, the scheduled emergency grants every GRANT_POLL_SECONDS, so that a grant is made
    close to the time the access team gave (AC21)."""
    policy = ReviewPolicy()
    loop = asyncio.get_running_loop()
    next_scan = loop.time()
    while True:
        try:
            async with runtime.transaction() as work:
                if loop.time() >= next_scan:
                    next_scan = loop.time() + SCAN_SECONDS
                    await scan(work, policy)
                else:
                    await grant_scheduled(work)
        except Exception:
            log.exception("review and P30 scan failed; retrying at the next tick")
        await asyncio.sleep(GRANT_POLL_SECONDS)
