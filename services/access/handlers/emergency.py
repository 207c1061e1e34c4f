"""Emergency absence-related access (AC11, AC21): asked when nobody else holds the absent
TL/SM's unit, answered by the access team (at once or at its time scale, the scheduler then
granting it), and closed by the completed P30 within two working days (DL03)."""

from __future__ import annotations

from contracts.access import AnswerEmergencyRequest, LodgeP30, RequestEmergencyAbsenceAccess
from services.access.handlers._steps import Handler, apply, facts, subject
from services.access.repository import Repositories
from services.shared.transaction import HandlerContext


async def request_emergency_absence_access(
    ctx: HandlerContext[RequestEmergencyAbsenceAccess], repos: Repositories
) -> None:
    """AC11/AC21: accepted only when nobody but the absent TL/SM holds their unit; the access
    team answers it (AnswerEmergencyRequest)."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    change = user.request_emergency_access(
        await facts(ctx, repos),
        cmd.unit_id,
        absent_user_id=cmd.absent_user_id,
        absent=await repos.holdings.get(cmd.absent_user_id),
        holders=await repos.holdings.unit_holders(cmd.unit_id),
        reason=cmd.reason,
    )
    await apply(ctx, repos, change)


async def answer_emergency_request(
    ctx: HandlerContext[AnswerEmergencyRequest], repos: Repositories
) -> None:
    """AC21: the access team grants at once (this command, this transaction) or answers with
    its time scale; the access scheduler grants it then. Either way the requester is told."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    record = await repos.p30s.get(cmd.p30_id, lock=True)
    unit_id = record.unit_ids[0] if record and record.unit_ids else ""
    change = user.answer_emergency_request(
        await facts(ctx, repos),
        cmd.p30_id,
        record,
        cmd.grant_at,
        absent=await repos.holdings.get(record.absent_user_id if record else None),
        holders=await repos.holdings.unit_holders(unit_id) if unit_id else [],
    )
    await apply(ctx, repos, change)


async def lodge_p30(ctx: HandlerContext[LodgeP30], repos: Repositories) -> None:
    """AC11: the completed P30 closes the outstanding emergency record; it names its approver
    (the case-owning TL it was discussed with, AC20)."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    change = user.lodge_p30(
        await facts(ctx, repos),
        cmd.p30_id,
        await repos.p30s.get(cmd.p30_id, lock=True),
        discussion_held=cmd.discussion_held,
        approver_id=cmd.discussed_with,
        approver=await repos.holdings.get(cmd.discussed_with),
        reason=cmd.reason,
    )
    await apply(ctx, repos, change)


HANDLERS: dict[type, Handler] = {
    RequestEmergencyAbsenceAccess: request_emergency_absence_access,
    AnswerEmergencyRequest: answer_emergency_request,
    LodgeP30: lodge_p30,
}
