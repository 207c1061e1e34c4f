"""Who holds which work item, projected from allocation.events: the access service's AC18
views (a user's work across positions) and the removal saga's checks read it.

Read through the typed models of allocation's one shape for work-item events (version 2,
`items: list[WorkItemSnapshot]`, and `BulkAssigned`, which has it in version 1): each item's
snapshot says who holds it now and in what state. Events that change no item are not read.
An outcome announced in parts (TR08: `BulkAssigned`, `AbsentCaseworkerWorkMovedV2`,
`PositionWorkReleasedV2`) is projected part by part as each arrives: a snapshot is the item's
whole state, so each part stands alone and reading one twice changes nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from contracts.allocation import (
    AbsentCaseworkerWorkMovedV2,
    BulkAssigned,
    PositionWorkReleasedV2,
    ServiceRequestCompletedV2,
    WorkItemAssignedV2,
    WorkItemCreatedV2,
    WorkItemDueV2,
    WorkItemFinishedV2,
    WorkItemMovedV2,
    WorkItemOverdueV2,
    WorkItemPriorityChangedV2,
    WorkItemResumedV2,
    WorkItemReturnedV2,
    WorkItemsChanged,
    WorkItemSnapshot,
    WorkItemStartedV2,
)
from services.access import store
from services.shared.transaction import Dispatcher, HandlerContext

# Every allocation event that carries work items after a change.
PROJECTED = (
    WorkItemCreatedV2,
    WorkItemAssignedV2,
    WorkItemStartedV2,
    WorkItemPriorityChangedV2,
    WorkItemMovedV2,
    WorkItemFinishedV2,
    WorkItemReturnedV2,
    WorkItemDueV2,
    WorkItemOverdueV2,
    WorkItemResumedV2,
    ServiceRequestCompletedV2,
    AbsentCaseworkerWorkMovedV2,
    PositionWorkReleasedV2,
    BulkAssigned,
)


async def _project(ctx: HandlerContext[Any], items: Iterable[WorkItemSnapshot]) -> None:
    """Each item's holder and state as the snapshot gives them (created or updated)."""
    w = store.work_items
    for item in items:
        values = {
            "work_item_id": item.work_item_id,
            "person_id": item.person_id,
            "step_type": item.step_type.value,
            "state": item.state.value,
            "owner_kind": item.owner_kind,
            "owner_id": item.owner_id,
            "updated_at": ctx.now,
        }
        stmt = insert(w).values(**values)
        await ctx.execute(
            stmt.on_conflict_do_update(
                index_elements=[w.c.work_item_id],
                set_={k: v for k, v in values.items() if k != "work_item_id"},
            )
        )


async def _items_changed(ctx: HandlerContext[WorkItemsChanged | BulkAssigned]) -> None:
    await _project(ctx, ctx.message.items)


def register(dispatcher: Dispatcher) -> None:
    """Projects every event of work items changed (registered before the saga's handlers)."""
    for model in PROJECTED:
        dispatcher.add(model.TYPE, _items_changed)
