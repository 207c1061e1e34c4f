"""Version 1 of allocation's work-item events, derived from version 2.

Version 2 (`items: list[WorkItemSnapshot]`, contracts.allocation) is the one shape the
platform's own consumers read. docs/subscribing.md promises subscribers of a released version
that it is written beside its successor for the deprecation window, so every v2 event that has a
v1 predecessor is followed by that predecessor, built here from the v2 event alone (pure: no
I/O). Emitted right before its v2 event, with the same key, so a reader of either version sees
its records in the order of the changes (and a v1 reader's first event of an outcome is still
the one it knew)."""

from __future__ import annotations

from typing import Any

from contracts import Event
from contracts.allocation import (
    AbsentCaseworkerWorkMoved,
    AbsentCaseworkerWorkMovedV2,
    Owner,
    PositionWorkReleased,
    PositionWorkReleasedV2,
    ReleasedItem,
    ServiceRequestCompleted,
    ServiceRequestCompletedV2,
    WorkItemAssigned,
    WorkItemAssignedV2,
    WorkItemCreated,
    WorkItemCreatedV2,
    WorkItemDue,
    WorkItemDueV2,
    WorkItemFinished,
    WorkItemFinishedV2,
    WorkItemMoved,
    WorkItemMovedV2,
    WorkItemOverdue,
    WorkItemOverdueV2,
    WorkItemPriorityChanged,
    WorkItemPriorityChangedV2,
    WorkItemResumed,
    WorkItemResumedV2,
    WorkItemReturned,
    WorkItemReturnedV2,
    WorkItemStarted,
    WorkItemStartedV2,
)

# v2 type -> its v1 predecessor, for the events of one item (`items[0]` was `item`,
# `from_owners[0]` was `from_owner`).
_ONE_ITEM: dict[type[Event], type[Event]] = {
    WorkItemAssignedV2: WorkItemAssigned,
    WorkItemStartedV2: WorkItemStarted,
    WorkItemPriorityChangedV2: WorkItemPriorityChanged,
    WorkItemMovedV2: WorkItemMoved,
    WorkItemFinishedV2: WorkItemFinished,
    WorkItemReturnedV2: WorkItemReturned,
    WorkItemDueV2: WorkItemDue,
    WorkItemOverdueV2: WorkItemOverdue,
    WorkItemResumedV2: WorkItemResumed,
    ServiceRequestCompletedV2: ServiceRequestCompleted,
}


def predecessor(event: Event) -> Event | None:
    """The v1 event describing the same change as this v2 one; None when it has none."""
    if isinstance(event, WorkItemCreatedV2):
        (item,) = event.items
        return WorkItemCreated(
            work_item_id=item.work_item_id,
            person_id=event.person_id,
            person_name=item.person_name,
            step_type=item.step_type,
            state=item.state,
            owner_kind=item.owner_kind,
            owner_id=item.owner_id,
            priority=item.priority,
            created_at=event.created_at,
            owner_user_id=item.owner_user_id,
            note=event.note,
            acting_user_id=item.acting_user_id,
            due_at=item.due_at,
        )
    if isinstance(event, AbsentCaseworkerWorkMovedV2):
        return AbsentCaseworkerWorkMoved(
            from_position_id=event.from_position_id, to_owner=event.to_owner, moved=event.items
        )
    if isinstance(event, PositionWorkReleasedV2):
        return PositionWorkReleased(
            release_id=event.release_id,
            user_id=event.user_id,
            position_id=event.position_id,
            moved=[
                ReleasedItem(
                    work_item_id=i.work_item_id,
                    person_id=i.person_id,
                    to_owner=Owner(kind=i.owner_kind, id=i.owner_id),
                )
                for i in event.items
            ],
        )
    v1 = _ONE_ITEM.get(type(event))
    if v1 is None:
        return None
    fields: dict[str, Any] = dict(event)
    fields["item"] = fields.pop("items")[0]
    if "from_owners" in fields:
        fields["from_owner"] = fields.pop("from_owners")[0]
    return v1(**fields)
