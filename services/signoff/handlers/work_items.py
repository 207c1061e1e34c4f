"""Sign-off's handlers of allocation.events: the Wellbeing steps it keeps forms for."""

from __future__ import annotations

from typing import Any

from contracts.allocation import (
    BulkAssigned,
    WorkItemAssignedV2,
    WorkItemCreatedV2,
    WorkItemFinishedV2,
    WorkItemMovedV2,
    WorkItemPriorityChangedV2,
    WorkItemResumedV2,
    WorkItemReturnedV2,
    WorkItemsChanged,
    WorkItemSnapshot,
    WorkItemStartedV2,
)
from contracts.signoff import StepTracked
from services.shared.transaction import HandlerContext
from services.signoff import domain, store
from services.signoff.handlers.registry import dispatcher

# --- Steps learnt from allocation.events ------------------------------------------------------


async def _track(ctx: HandlerContext[Any], item: WorkItemSnapshot) -> None:
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


async def _items_changed(ctx: HandlerContext[WorkItemsChanged | BulkAssigned]) -> None:
    """Version 2 of allocation's work-item events: every one carries the items after."""
    for item in ctx.message.items:
        await _track(ctx, item)


for _event in (
    WorkItemCreatedV2,
    WorkItemAssignedV2,
    WorkItemStartedV2,
    WorkItemPriorityChangedV2,
    WorkItemMovedV2,
    WorkItemFinishedV2,
    WorkItemReturnedV2,
    WorkItemResumedV2,  # AL13: a Generic Support Officer now holds Case Monitoring
    BulkAssigned,  # its version 1 has the shape already
):
    dispatcher.add(_event.TYPE, _items_changed)
