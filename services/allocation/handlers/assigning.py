"""Assigning (AL05-AL10, AL14, AC16, AC19): "pass to worker", reassigning started work and
changing the priority, each by one who may allocate the work (AL10)."""

from __future__ import annotations

from contracts import Message
from contracts.allocation import AssignWork, ChangePriority, Priority, ReassignWork
from services.allocation import domain
from services.allocation.handlers._steps import (
    Ctx,
    Handler,
    apply,
    authorise,
    authorise_on,
    involved,
    work_item,
)
from services.allocation.repository import Repositories
from services.shared.transaction import HandlerContext


async def _assign(
    ctx: Ctx,
    repos: Repositories,
    cmd: AssignWork | ReassignWork,
    *,
    priority: Priority | None,
    from_record: bool,
    started_only: bool,
) -> None:
    item = await work_item(repos, cmd.work_item_id, cmd.person_id, "AL06")
    by = await authorise_on(ctx, repos, item, "reassign" if started_only else "allocate")
    target = domain.require_active_target(  # AC16
        await repos.directory.position(cmd.to_position_id), cmd.to_position_id
    )
    domain.check_absence_target(by, target)  # AC19, before AL05's relationships are read
    change = item.assign(
        target,
        by=by,
        actor=ctx.actor,
        involved=await involved(ctx, repos, item.person_id, target),
        note=cmd.note,
        priority=priority,
        from_record=from_record,
        started_only=started_only,
    )
    await apply(ctx, repos, [change])


async def assign_work(ctx: HandlerContext[AssignWork], repos: Repositories) -> None:
    """AL05, AL06, AL07, AL09, AL10, AC16, AC19."""
    cmd = ctx.message
    await _assign(
        ctx, repos, cmd, priority=cmd.priority, from_record=cmd.from_record, started_only=False
    )


async def reassign_work(ctx: HandlerContext[ReassignWork], repos: Repositories) -> None:
    """AL09 (with AL05, AL10, AC16, AC19)."""
    await _assign(ctx, repos, ctx.message, priority=None, from_record=False, started_only=True)


async def change_priority(ctx: HandlerContext[ChangePriority], repos: Repositories) -> None:
    """AL07, AL10."""
    cmd = ctx.message
    item = await work_item(repos, cmd.work_item_id, cmd.person_id, "AL07")
    await authorise(ctx, repos, item.owning_unit, "re-prioritise")
    await apply(ctx, repos, [item.change_priority(cmd.priority, ctx.actor)])


HANDLERS: dict[type[Message], Handler] = {
    AssignWork: assign_work,
    ReassignWork: reassign_work,
    ChangePriority: change_priority,
}
