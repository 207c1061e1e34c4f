"""The current position a user works in (AC17)."""

from __future__ import annotations

from contracts.access import ChangePosition
from services.access.handlers._steps import Handler, actor_id, apply, subject
from services.access.repository import Repositories
from services.shared.transaction import HandlerContext


async def change_position(ctx: HandlerContext[ChangePosition], repos: Repositories) -> None:
    """AC17: only the user, only to a position they hold and that is not being removed."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    await apply(ctx, repos, user.change_position(actor_id(ctx), cmd.position_id))


HANDLERS: dict[type, Handler] = {ChangePosition: change_position}
