"""access.events told to people: secondary access granted or removed (NT06), emergency access
granted or scheduled (NT04, AC21), a P30 refused (AC20); and the notices that waited for a
position's holder (NT07). The shared directory projection has applied the event first."""

from __future__ import annotations

from contracts.access import (
    EmergencyAccessGranted,
    EmergencyAccessScheduled,
    P30Refused,
    PositionGranted,
    PositionRevoked,
)
from services.notifications import domain
from services.notifications.handlers._notify import Handler, notify, tell
from services.notifications.repository import Repositories
from services.shared.transaction import HandlerContext


async def position_granted(ctx: HandlerContext[PositionGranted], repos: Repositories) -> None:
    """Delivers the notices that waited for the position's holder (NT07); NT06: the user is
    told of secondary access (an emergency grant is told by NT04 instead)."""
    m = ctx.message
    for waiting in await repos.deliveries.waiting_for(m.position_id):
        # NT07: a notice that arrived before the directory knew the position's holder.
        await notify(
            ctx,
            repos,
            waiting.notice,
            [m.user_id],
            source_id=waiting.source_id,
            correlation_id=waiting.correlation_id,
        )
        await repos.deliveries.resolved(waiting.delivery_id, ctx.now)
    if not domain.is_secondary(m.kind.value) or m.emergency:
        return
    notice = domain.access_changed(
        granted=True,
        user_id=m.user_id,
        position_id=m.position_id,
        unit=await repos.people.unit_name(m.unit_id),
        kind=m.kind.value,
    )
    await tell(ctx, repos, notice, [m.user_id])


async def position_revoked(ctx: HandlerContext[PositionRevoked], repos: Repositories) -> None:
    """NT06: the user is told of removed secondary access."""
    m = ctx.message
    before = await repos.people.position(m.position_id)
    if before is None or not domain.is_secondary(before.kind):
        return
    notice = domain.access_changed(
        granted=False,
        user_id=m.user_id,
        position_id=m.position_id,
        unit=await repos.people.unit_name(before.unit_id),
        kind=before.kind,
    )
    await tell(ctx, repos, notice, [m.user_id])


async def emergency_access_granted(
    ctx: HandlerContext[EmergencyAccessGranted], repos: Repositories
) -> None:
    """NT04: the user and the TL/SM responsible are told, and reminded until the P30 arrives."""
    m = ctx.message
    position = await repos.people.position(m.position_id)
    unit_id = position.unit_id if position else ""
    managers = await repos.people.responsible_managers(m.user_id, unit_id)
    notice = domain.emergency_granted(
        user_id=m.user_id,
        position_id=m.position_id,
        unit=await repos.people.unit_name(unit_id) if unit_id else m.position_id,
        p30_due=m.p30_deadline,
    )
    await tell(ctx, repos, notice, [m.user_id, m.requested_by, *managers])
    await repos.reminders.schedule(
        series=domain.p30_series(m.p30_id),
        reminder=domain.p30_first_reminder(ctx.envelope.occurred_at, m.p30_deadline),
        deadline=m.p30_deadline,
        user_id=m.user_id,
        position_id=m.position_id,
    )


async def emergency_access_scheduled(
    ctx: HandlerContext[EmergencyAccessScheduled], repos: Repositories
) -> None:
    """NT04, AC21: the requester (and the user) are told the access team's time scale; the
    grant, when made, is told by EmergencyAccessGranted."""
    m = ctx.message
    notice = domain.emergency_scheduled(
        user_id=m.user_id,
        unit=await repos.people.unit_name(m.unit_id),
        grant_at=m.grant_at,
        answered_by=m.answered_by,
    )
    await tell(ctx, repos, notice, [m.requested_by, m.user_id])


async def p30_refused(ctx: HandlerContext[P30Refused], repos: Repositories) -> None:
    """AC20: the requester is told the access team refused the P30."""
    m = ctx.message
    notice = domain.p30_refused(
        user_id=m.user_id, p30_id=m.p30_id, refused_by=m.refused_by, reason=m.reason
    )
    await tell(ctx, repos, notice, [m.requested_by])


HANDLERS: dict[type, Handler] = {
    PositionGranted: position_granted,
    PositionRevoked: position_revoked,
    EmergencyAccessGranted: emergency_access_granted,
    EmergencyAccessScheduled: emergency_access_scheduled,
    P30Refused: p30_refused,
}
