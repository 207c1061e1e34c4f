"""Version 1 of allocation's work-item events, derived from version 2.

Version 2 (`items: list[WorkItemSnapshot]`, contracts.allocation) is the one shape the
platform's own consumers read. docs/subscribing.md promises subscribers of a released version
that it is written beside its successor for the deprecation window, so every v2 event that has a
v1 predecessor is followed by that predecessor, built here from the v2 event alone (pure: no
I/O). Emitted right before its v2 event, with the same key, so a reader of either version sees
its records in the order of the changes (and a v1 reader's first event of an outcome is still
the one it knew).

TR08: a v2 outcome of many items comes in parts (`part`/`parts`, contracts.allocation); v1 of
an absent caseworker's move and of a position's release has no parts, so it stays one event
built from all the parts (`predecessor_of`). A release's v1 entries are small (id, person,
owner) and fit for any allowed count; the absent move's v1 entries are whole snapshots, so a
move whose v1 would not fit one record is refused as TR08 (`V1TooLarge`) while v1 is
published."""

from __future__ import annotations

from collections.abc import Sequence
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
from contracts.limits import BULK_ITEMS_MAX, MAX_RECORD_BYTES
from services.shared.rules import RuleViolation

# Room left in a record for the envelope around a payload (ids, type, actor) and its headers.
ENVELOPE_MARGIN = 16_384

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
    if isinstance(event, AbsentCaseworkerWorkMovedV2 | PositionWorkReleasedV2):
        return predecessor_of([event])
    v1 = _ONE_ITEM.get(type(event))
    if v1 is None:
        return None
    fields: dict[str, Any] = dict(event)
    fields["item"] = fields.pop("items")[0]
    if "from_owners" in fields:
        fields["from_owner"] = fields.pop("from_owners")[0]
    return v1(**fields)


class V1TooLarge(RuleViolation):
    """TR08: the one v1 event of a v2 outcome in parts would not fit one record."""

    def __init__(self, v1_type: str, why: str) -> None:
        super().__init__("TR08", f"its version 1 event ({v1_type}) would be {why}: move fewer")


def predecessor_of(parts: Sequence[Event]) -> Event | None:
    """The one v1 event describing the outcome announced in these v2 `parts` (all of one
    outcome, in order); None when it has none. Raises V1TooLarge when that v1 event could not
    be published as one record."""
    first = parts[0]
    if isinstance(first, AbsentCaseworkerWorkMovedV2):
        snapshots = [
            i for p in parts if isinstance(p, AbsentCaseworkerWorkMovedV2) for i in p.items
        ]
        _check_count(AbsentCaseworkerWorkMoved.TYPE, len(snapshots))
        return _checked_size(
            AbsentCaseworkerWorkMoved(
                from_position_id=first.from_position_id, to_owner=first.to_owner, moved=snapshots
            )
        )
    if isinstance(first, PositionWorkReleasedV2):
        items = [i for p in parts if isinstance(p, PositionWorkReleasedV2) for i in p.items]
        _check_count(PositionWorkReleased.TYPE, len(items))
        return _checked_size(
            PositionWorkReleased(
                release_id=first.release_id,
                user_id=first.user_id,
                position_id=first.position_id,
                moved=[
                    ReleasedItem(
                        work_item_id=i.work_item_id,
                        person_id=i.person_id,
                        to_owner=Owner(kind=i.owner_kind, id=i.owner_id),
                    )
                    for i in items
                ],
            )
        )
    if len(parts) != 1:
        raise ValueError(f"{first.TYPE} is not published in parts")
    return predecessor(first)


def _check_count(v1_type: str, count: int) -> None:
    if count > BULK_ITEMS_MAX:
        raise V1TooLarge(v1_type, f"{count} items, over its limit of {BULK_ITEMS_MAX}")


def _checked_size(v1: Event) -> Event:
    size = len(v1.model_dump_json().encode())
    if size > MAX_RECORD_BYTES - ENVELOPE_MARGIN:
        raise V1TooLarge(v1.TYPE, f"about {size} bytes, over the record limit")
    return v1
