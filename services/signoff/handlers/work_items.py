"""Sign-off's handlers of allocation.events: the Wellbeing steps it keeps forms for."""

from __future__ import annotations

from typing import Any

from contracts.allocation import (
    BulkAssigned,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemFinished,
    WorkItemMoved,
    WorkItemPriorityChanged,
    WorkItemResumed,
    WorkItemReturned,
    WorkItemSnapshot,
    WorkItemStarted,
)
from contracts.signoff import StepTracked
from services.shared.transaction import HandlerContext
from services.signoff import domain, store
from services.signoff.handlers.registry import dispatcher

# --- Steps learnt from allocation.events ------------------------------------------------------


async def _track(ctx: HandlerContext[Any], item: WorkItemCreated | WorkItemSnapshot) -> None:
    """Keep a Wellbeing step (each has a form, AL13) and who holds it; a step seen for the first
    time gets its form opened (StepTracked)."""
    if not domain.has_form(item.step_type):
        return
    tracked = await ctx.execute(
        store.track_step(
            step_id=item.work_item_id,
            person_id=item.person_id,
            person_name=item.person_name,
            step_type=item.step_type.value,
            owner_kind=item.owner_kind,
            owner_id=item.owner_id,
            now=ctx.now,
        )
    )
    if tracked.scalar_one():
        ctx.emit(
            StepTracked(
                step_id=item.work_item_id, person_id=item.person_id, step_type=item.step_type
            )
        )


@dispatcher.on(WorkItemCreated)
async def work_item_created(ctx: HandlerContext[WorkItemCreated]) -> None:
    await _track(ctx, ctx.message)


async def _item_changed(ctx: HandlerContext[Any]) -> None:
    await _track(ctx, ctx.message.item)


for _event in (
    WorkItemAssigned,
    WorkItemStarted,
    WorkItemPriorityChanged,
    WorkItemMoved,
    WorkItemFinished,
    WorkItemReturned,
    WorkItemResumed,  # AL13: a Generic Support Officer now holds Case Monitoring
):
    dispatcher.on(_event)(_item_changed)


@dispatcher.on(BulkAssigned)
async def bulk_assigned(ctx: HandlerContext[BulkAssigned]) -> None:
    for item in ctx.message.items:
        await _track(ctx, item)
