"""The directory access is the source of truth for (TR03): units, users and primary positions,
published for the other services' projections."""

from __future__ import annotations

from contracts.access import LoadDirectory
from services.access import domain
from services.access.handlers._steps import Handler, actor_id
from services.access.repository import Repositories
from services.shared.transaction import HandlerContext


async def load_directory(ctx: HandlerContext[LoadDirectory], repos: Repositories) -> None:
    """TR03: decided whole (by a directory administrator or an HR feed, within AC01/AC02, no
    position moved to another user) before anything is written; each creation or change is
    audited in the same transaction."""
    cmd = ctx.message
    current = await repos.directory.current(cmd)
    plan = domain.plan_directory_load(
        ctx.roles, ctx.actor.user_id if ctx.actor else None, cmd, current
    )
    await repos.directory.save(
        cmd, plan, command_id=ctx.envelope.message_id, changed_by=actor_id(ctx)
    )
    for event in domain.directory_events(cmd):
        ctx.emit(event)


HANDLERS: dict[type, Handler] = {LoadDirectory: load_directory}
