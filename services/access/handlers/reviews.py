"""Six-monthly reviews of absence-related access (AC09): confirmed, or removed through a
removal P30 and the AC16 saga. The scheduler flags them (services/access/scheduler.py)."""

from __future__ import annotations

from contracts.access import ReviewAbsenceAccess
from services.access.handlers._steps import Handler, apply, facts, removal_history, subject
from services.access.repository import Repositories
from services.shared.transaction import HandlerContext


async def review_absence_access(
    ctx: HandlerContext[ReviewAbsenceAccess], repos: Repositories
) -> None:
    """AC09: confirm (due again in six months) or remove (a removal P30 for the access team,
    then the AC16 saga)."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    grant = await repos.holdings.grant(cmd.grant_id)
    history = await removal_history(repos, grant, grant.position_id if grant else "")
    change = user.review_absence_access(
        await facts(ctx, repos),
        cmd.grant_id,
        grant,
        history,
        confirm=cmd.confirm,
        reason=cmd.reason,
        successor_position_id=cmd.successor_position_id,
    )
    await apply(ctx, repos, change)


HANDLERS: dict[type, Handler] = {ReviewAbsenceAccess: review_absence_access}
