"""Reminders (NT04, NT05): an emergency P30's reminders until it arrives, then its escalation;
a review's notices before it falls due, when due and when overdue. Scheduled from access's
events, fired by the reminder scan (services/notifications/worker.py) or at once when the
access service flags the moment first: each fires once, whichever comes first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from contracts.access import (
    AbsenceAccessReviewed,
    AbsenceReviewDue,
    AbsenceReviewOverdue,
    AccessGrantEnded,
    AccessGrantRecorded,
    AccessKind,
    EmergencyP30Overdue,
    P30Lodged,
)
from services.notifications import domain
from services.notifications.handlers._notify import Ctx, Handler, notify
from services.notifications.repository import Repositories
from services.shared.transaction import HandlerContext, Transaction


async def fire_reminder(
    tx: Transaction,
    repos: Repositories,
    r: domain.ScheduledReminder,
    extra_users: Sequence[str] = (),
) -> None:
    """NT04, NT05: a scheduled reminder fires once: it is marked fired in the transaction that
    plans its notices, which are keyed by the reminder's id. Recipients are the user holding the
    access and the TL/SM responsible (and whoever the access service names); an escalation also
    goes to their line managers. A P30 reminder schedules the next one, or the escalation once
    the P30 is overdue."""
    position = await repos.people.position(r.position_id)
    unit_id = position.unit_id if position else ""
    users = [
        r.user_id,
        *await repos.people.responsible_managers(r.user_id, unit_id),
        *extra_users,
    ]
    if r.escalate:
        users += await repos.people.line_managers(users)
    notice = domain.reminder_notice(
        r.kind,
        user_id=r.user_id,
        position_id=r.position_id,
        unit=await repos.people.unit_name(unit_id) if unit_id else r.position_id,
        deadline=r.deadline,
    )
    await notify(tx, repos, notice, users, source_id=r.reminder_id, correlation_id=None)
    await repos.reminders.fired(r.reminder_id, tx.now)
    if r.kind == domain.Kind.P30_REMINDER:
        await repos.reminders.schedule(
            series=r.series,
            reminder=domain.p30_next_reminder(max(tx.now, r.due_at), r.deadline),
            deadline=r.deadline,
            user_id=r.user_id,
            position_id=r.position_id,
        )


async def _fire_now(
    ctx: Ctx, repos: Repositories, series: str, kind: str, extra_users: Sequence[str]
) -> None:
    """The access service says a reminder's moment has come: fire our pending one of that kind
    now (it fires once, whichever of the two comes first) and drop the stale ones before it."""
    for r in await repos.reminders.pending_in_series(series, kind):
        await fire_reminder(ctx, repos, r, extra_users)
        await repos.reminders.cancel_series(series, due_before=r.due_at)


async def _schedule_review(
    repos: Repositories, grant_id: uuid.UUID, user_id: str, position_id: str, due: datetime
) -> None:
    for reminder in domain.review_reminders(due):
        await repos.reminders.schedule(
            series=domain.review_series(grant_id),
            reminder=reminder,
            deadline=due,
            user_id=user_id,
            position_id=position_id,
        )


async def p30_lodged(ctx: HandlerContext[P30Lodged], repos: Repositories) -> None:
    """NT04: the P30 arrived; the reminders stop."""
    await repos.reminders.cancel_series(domain.p30_series(ctx.message.p30_id))


async def emergency_p30_overdue(
    ctx: HandlerContext[EmergencyP30Overdue], repos: Repositories
) -> None:
    """NT04: an overdue P30 escalates to the line manager (once, whether our schedule or the
    access service notices first)."""
    m = ctx.message
    series = domain.p30_series(m.p30_id)
    pending = await repos.reminders.pending_in_series(series, domain.Kind.P30_REMINDER)
    if pending:  # the escalation is due now, in place of the remaining reminders
        await repos.reminders.schedule(
            series=series,
            reminder=domain.Reminder(domain.Kind.P30_OVERDUE, m.deadline, escalate=True),
            deadline=m.deadline,
            user_id=m.user_id,
            position_id=pending[0].position_id,
        )
    extra = [u for u in (m.requested_by, m.escalate_to) if u]
    await _fire_now(ctx, repos, series, domain.Kind.P30_OVERDUE, extra)
    await repos.reminders.cancel_series(series)


async def access_grant_recorded(
    ctx: HandlerContext[AccessGrantRecorded], repos: Repositories
) -> None:
    """NT05: absence-related access is reviewed every six months: announce the review before it
    falls due, when due, and escalate when overdue."""
    m = ctx.message
    if m.kind is not AccessKind.ABSENCE:
        return
    due = m.review_due_at or domain.review_due(ctx.now)
    await _schedule_review(repos, m.grant_id, m.user_id, m.position_id, due)


async def absence_access_reviewed(
    ctx: HandlerContext[AbsenceAccessReviewed], repos: Repositories
) -> None:
    """NT05: a review done ends its reminders; a confirmed access is reviewed again later."""
    m = ctx.message
    await repos.reminders.cancel_series(domain.review_series(m.grant_id))
    if m.confirmed and m.next_review_due_at is not None:
        await _schedule_review(repos, m.grant_id, m.user_id, m.position_id, m.next_review_due_at)


async def access_grant_ended(ctx: HandlerContext[AccessGrantEnded], repos: Repositories) -> None:
    """NT05: nothing to review once the grant has ended."""
    await repos.reminders.cancel_series(domain.review_series(ctx.message.grant_id))


async def absence_review_due(ctx: HandlerContext[AbsenceReviewDue], repos: Repositories) -> None:
    """NT05: the access service flags a review falling due: announce it (once)."""
    m = ctx.message
    series = domain.review_series(m.grant_id)
    await _fire_now(ctx, repos, series, domain.Kind.REVIEW_UPCOMING, m.responsible)


async def absence_review_overdue(
    ctx: HandlerContext[AbsenceReviewOverdue], repos: Repositories
) -> None:
    """NT05: the access service flags an overdue review: escalate it (once)."""
    m = ctx.message
    extra = [*m.responsible, *m.escalate_to]
    series = domain.review_series(m.grant_id)
    await _fire_now(ctx, repos, series, domain.Kind.REVIEW_OVERDUE, extra)


HANDLERS: dict[type, Handler] = {
    P30Lodged: p30_lodged,
    EmergencyP30Overdue: emergency_p30_overdue,
    AccessGrantRecorded: access_grant_recorded,
    AbsenceAccessReviewed: absence_access_reviewed,
    AccessGrantEnded: access_grant_ended,
    AbsenceReviewDue: absence_review_due,
    AbsenceReviewOverdue: absence_review_overdue,
}
