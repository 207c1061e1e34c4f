"""Allocation contracts: commands on `allocation.commands`, events on `allocation.events`.
Keyed by person id, so one person's work stays in order."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from contracts.envelope import Bounded, Command, Event
from contracts.limits import BULK_ITEMS_MAX, Text


class StepType(StrEnum):
    TRIAGE = "WB Initial Risk Assessment and Triage"
    TRUSTED_ASSESSMENT = "WB Trusted Assessment and Support Planning"
    CASE_MONITORING = "WB Case Monitoring"
    SUPPORT_PLAN_DELIVERY = "WB Support Action Plan Delivery"
    SERVICE_REQUEST = "Service request"  # the agency's unit of work (not a Wellbeing step)


class WorkState(StrEnum):
    INCOMING = "incoming"
    INCOMPLETE = "incomplete"
    FINISHED = "finished"


class Area(StrEnum):
    NORTH = "North"
    SOUTH = "South"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


INVOLVED_WORKER = "Involved Worker"


class RelationshipType(StrEnum):
    """AL16: a worker relationship's type is chosen from this list (the read API serves it)."""

    INVOLVED_WORKER = INVOLVED_WORKER


class ReceiveReferral(Command):
    """An external referral (AL01): creates the triage step in the Hub Team's incoming work."""

    TYPE: ClassVar[str] = "allocation.receive_referral.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str = Field(min_length=1)
    person_name: str = Field(min_length=1)
    area: str | None = None
    reason: Text = ""
    # DL01: when the referral reached the service, if before it was logged (a letter, a form
    # sent on): its due date counts from then. At most RECEIVED_BEFORE_MAX_DAYS earlier.
    received_at: datetime | None = None


class ReceiveServiceRequest(Command):
    """Agency intake: a customer's service request enters a team's or segment's hopper, the
    queue that team leaders assign from (AC19)."""

    TYPE: ClassVar[str] = "allocation.receive_service_request.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str = Field(min_length=1)
    person_name: str = Field(min_length=1)
    unit_id: str = Field(min_length=1)
    description: Text = ""
    received_at: datetime | None = None  # DL01: as ReceiveReferral's


class CreateStep(Command):
    """Create a workflow step for a person; the owning team follows from the step type (AL02,
    AL03)."""

    TYPE: ClassVar[str] = "allocation.create_step.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str = Field(min_length=1)
    step_type: StepType
    area: str | None = None
    work_item_id: uuid.UUID | None = None


class WorkItemCreated(Event):
    TYPE: ClassVar[str] = "allocation.work_item_created.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    work_item_id: uuid.UUID
    person_id: str
    person_name: str | None = None
    step_type: StepType
    state: WorkState
    owner_kind: str
    owner_id: str
    priority: str
    created_at: datetime
    owner_user_id: str | None = None  # the user holding the position when owner_kind="worker"
    note: Text = ""
    acting_user_id: str | None = None
    due_at: datetime | None = None  # DL01: set by the step type, in working days


class Owner(Bounded):
    """Who holds a work item: a team's queue, an inbox, a team or segment hopper, or a worker
    position (`kind="worker"`, `id` = position id)."""

    kind: str  # "team" | "inbox" | "hopper" | "worker"
    id: str


# --- Access-removal saga, allocation's half (AC16) -------------------------------------------
# The access service publishes `access.position_release_requested.v1` on access.events; the
# allocation service moves every item held by that position (to the hopper or the successor) in
# one transaction and answers with one of these two events on allocation.events.


class ReleasedItem(Bounded):
    work_item_id: uuid.UUID
    person_id: str
    to_owner: Owner


class PositionWorkReleased(Event):
    TYPE: ClassVar[str] = "allocation.position_work_released.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    release_id: uuid.UUID
    user_id: str
    position_id: str
    moved: list[ReleasedItem] = Field(max_length=BULK_ITEMS_MAX)


class PositionWorkReleaseFailed(Event):
    TYPE: ClassVar[str] = "allocation.position_work_release_failed.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    release_id: uuid.UUID
    user_id: str
    position_id: str
    reason: Text


# --- Work item snapshot and the events of every change ---------------------------------------
# Each event carries a full snapshot of the item after the change, so a subscriber (sign-off,
# notifications, a workview) can rebuild what it needs without calling allocation.


class WorkItemSnapshot(Bounded):
    work_item_id: uuid.UUID
    person_id: str
    person_name: str | None = None
    step_type: StepType
    state: WorkState
    owner_kind: str  # "team" | "inbox" | "hopper" | "worker"
    owner_id: str
    owner_user_id: str | None = None  # the user holding the position when owner_kind="worker"
    owner_unit_id: str | None = None  # the team/segment the owner belongs to, when known
    priority: str
    acting_user_id: str | None = None  # who made this change
    acting_position_id: str | None = None
    due_at: datetime | None = None  # DL01 (None in records made before due dates existed)


class _ItemEvent(Event):
    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str
    item: WorkItemSnapshot


class WorkItemAssigned(_ItemEvent):
    """AL06 (incoming item to the worker's incoming work), AL09 (started item to the worker's
    incomplete work), AL07 (priority may change with it). `reassigned` is true for started
    work."""

    TYPE: ClassVar[str] = "allocation.work_item_assigned.v1"

    from_owner: Owner
    note: Text = ""
    reassigned: bool = False
    previous_priority: str | None = None


class WorkItemStarted(_ItemEvent):
    """A step was started: incoming -> incomplete (AL03)."""

    TYPE: ClassVar[str] = "allocation.work_item_started.v1"

    from_owner: Owner


class WorkItemPriorityChanged(_ItemEvent):
    TYPE: ClassVar[str] = "allocation.work_item_priority_changed.v1"

    previous_priority: str


class WorkItemMoved(_ItemEvent):
    """Work moved without being passed to a chosen worker by an allocator: an absent
    caseworker's cases (AC07), back to the segment hopper (AC19), or released from a removed
    position (AC16). `rule` names which."""

    TYPE: ClassVar[str] = "allocation.work_item_moved.v1"

    from_owner: Owner
    rule: str
    note: Text = ""


class WorkItemFinished(_ItemEvent):
    """Sign-off finished the step: it is locked (SO09)."""

    TYPE: ClassVar[str] = "allocation.work_item_finished.v1"


class WorkItemReturned(_ItemEvent):
    """Sign-off returned the step's request: it goes back to the incomplete work of the worker
    who completed it (SO07)."""

    TYPE: ClassVar[str] = "allocation.work_item_returned.v1"

    from_owner: Owner
    note: Text = ""
    request_id: uuid.UUID


class WorkItemDue(_ItemEvent):
    """DL02: an unfinished item's due day has arrived (raised once per item)."""

    TYPE: ClassVar[str] = "allocation.work_item_due.v1"

    due_at: datetime


class WorkItemOverdue(_ItemEvent):
    """DL02: an unfinished item passed its due date (raised once per item); from now on it is
    flagged overdue in every workview and the person's record."""

    TYPE: ClassVar[str] = "allocation.work_item_overdue.v1"

    due_at: datetime


class IncomingRequestRecorded(Event):
    """A sign-off request now sits in a team's incoming requests (AL04)."""

    TYPE: ClassVar[str] = "allocation.incoming_request_recorded.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    request_id: uuid.UUID
    step_id: uuid.UUID
    person_id: str
    person_name: str | None = None
    title: str
    team: str
    state: str  # "outstanding" | "completed" | "returned"


# --- Commands --------------------------------------------------------------------------------


class _ItemCommand(Command):
    """A command about one work item, keyed by its person so one person's work stays in
    order."""

    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str = Field(min_length=1)
    work_item_id: uuid.UUID


class StartStep(_ItemCommand):
    """Start a step: incoming -> incomplete (AL03). A team's Case Monitoring step started from
    the Hub Team's incoming work goes to the person's area's Case Monitoring inbox."""

    TYPE: ClassVar[str] = "allocation.start_step.v1"


class AssignWork(_ItemCommand):
    """Update assignment, "pass to worker" (AL05-AL07, AL09, AL10, AC19). `from_record`: the
    assignment is made from the person's record, where the priority cannot change (AL07)."""

    TYPE: ClassVar[str] = "allocation.assign_work.v1"

    to_position_id: str = Field(min_length=1)
    note: Text = ""
    priority: Priority | None = None
    from_record: bool = False


class ReassignWork(_ItemCommand):
    """Reassign started work from a worker's or an inbox's incomplete work (AL09)."""

    TYPE: ClassVar[str] = "allocation.reassign_work.v1"

    to_position_id: str = Field(min_length=1)
    note: Text = ""


class ChangePriority(_ItemCommand):
    TYPE: ClassVar[str] = "allocation.change_priority.v1"

    priority: Priority


class SendToSegmentHopper(_ItemCommand):
    """AC19: move a case out of a team (to be reassigned from another position) by sending it
    back to the segment hopper."""

    TYPE: ClassVar[str] = "allocation.send_to_segment_hopper.v1"

    note: Text = ""


class RecordWorkerRelationship(Command):
    """Record a worker relationship on a person (AL05, AL11). `from_date` defaults to today."""

    TYPE: ClassVar[str] = "allocation.record_worker_relationship.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str = Field(min_length=1)
    worker_position_id: str = Field(min_length=1)
    relationship_type: RelationshipType = RelationshipType.INVOLVED_WORKER  # AL16: from a list
    from_date: date | None = None
    end_date: date | None = None
    relationship_id: uuid.UUID | None = None


class AmendWorkerRelationship(Command):
    """Amend a recorded relationship's from-date or set its end-date."""

    TYPE: ClassVar[str] = "allocation.amend_worker_relationship.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str = Field(min_length=1)
    relationship_id: uuid.UUID
    from_date: date | None = None
    end_date: date | None = None


class WorkerRelationshipRecorded(Event):
    """A relationship recorded or amended (the current values)."""

    TYPE: ClassVar[str] = "allocation.worker_relationship_recorded.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    relationship_id: uuid.UUID
    person_id: str
    person_name: str | None = None
    worker_position_id: str
    worker_user_id: str
    relationship_type: str
    from_date: date
    end_date: date | None = None
    recorded_by_user_id: str | None = None
    amended: bool = False


class PreviewBulkAssign(Command):
    """AL08: what would happen if these items were passed to one worker; changes nothing."""

    TYPE: ClassVar[str] = "allocation.preview_bulk_assign.v1"
    KEY_FIELD: ClassVar[str | None] = "to_position_id"

    work_item_ids: list[uuid.UUID] = Field(max_length=BULK_ITEMS_MAX, min_length=1)
    to_position_id: str = Field(min_length=1)
    note: Text = ""


class BulkAssign(PreviewBulkAssign):
    """AL08: pass every item to one worker with one note, all or none, in one transaction."""

    TYPE: ClassVar[str] = "allocation.bulk_assign.v1"


class BulkItemOutcome(Bounded):
    work_item_id: uuid.UUID
    person_id: str | None = None
    ok: bool
    rule: str | None = None
    reason: Text | None = None


# TR08: a bulk assignment's outcome (and its preview) is published in parts of at most this
# many items, so each event stays well inside the record size limit however many there were.
BULK_EVENT_ITEMS = 500


class BulkAssignPreviewed(Event):
    """AL08: each item's outcome, nothing changed; `would_apply` is for the whole selection. In
    `parts` events (numbered by `part`) like BulkAssigned when there are many items."""

    TYPE: ClassVar[str] = "allocation.bulk_assign_previewed.v1"
    KEY_FIELD: ClassVar[str | None] = "to_position_id"

    to_position_id: str
    note: Text
    outcomes: list[BulkItemOutcome] = Field(max_length=BULK_EVENT_ITEMS)
    would_apply: bool
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)


class BulkAssigned(Event):
    """Every selected item passed to one worker (AL08); `items` are the snapshots after. A bulk
    assignment of more than BULK_EVENT_ITEMS items is announced in `parts` events (numbered
    by `part` from 1, all keyed by the worker's position, so in order), caused by the one
    command: together they are its outcome."""

    TYPE: ClassVar[str] = "allocation.bulk_assigned.v1"
    KEY_FIELD: ClassVar[str | None] = "to_position_id"

    to_position_id: str
    to_user_id: str
    note: Text
    items: list[WorkItemSnapshot] = Field(max_length=BULK_EVENT_ITEMS)
    from_owners: list[Owner] = Field(max_length=BULK_EVENT_ITEMS)  # in the order of `items`
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)


class MoveAbsentCaseworkerWork(Command):
    """AC07: a team leader moves an absent caseworker's cases to another caseworker of the team
    (`to_position_id`) or, when it is None, to the team hopper."""

    TYPE: ClassVar[str] = "allocation.move_absent_caseworker_work.v1"
    KEY_FIELD: ClassVar[str | None] = "from_position_id"

    from_position_id: str = Field(min_length=1)
    to_position_id: str | None = None
    note: Text = ""


class AbsentCaseworkerWorkMoved(Event):
    TYPE: ClassVar[str] = "allocation.absent_caseworker_work_moved.v1"
    KEY_FIELD: ClassVar[str | None] = "from_position_id"

    from_position_id: str
    to_owner: Owner
    moved: list[WorkItemSnapshot] = Field(max_length=BULK_ITEMS_MAX)


# --- Steps that finish, and service requests completed (AL11, AL13, SO10, AC23) ------------


class ResumeStep(_ItemCommand):
    """AL13, AL11: a Generic Support Officer resumes the person's `WB Case Monitoring` step
    from the person's current work; it moves to their incomplete work."""

    TYPE: ClassVar[str] = "allocation.resume_step.v1"


class WorkItemResumed(_ItemEvent):
    """AL13: a step resumed by a worker from the person's current work (now theirs,
    incomplete)."""

    TYPE: ClassVar[str] = "allocation.work_item_resumed.v1"

    from_owner: Owner


class CompleteServiceRequest(_ItemCommand):
    """AC23: complete a service request from "My service requests" in the acting (current)
    position, which must be the position it is assigned to."""

    TYPE: ClassVar[str] = "allocation.complete_service_request.v1"


class ServiceRequestCompleted(_ItemEvent):
    """AC23: the service request is completed: the work item is finished and leaves every open
    view."""

    TYPE: ClassVar[str] = "allocation.service_request_completed.v1"

    from_owner: Owner


class InvolvedWorkerPrompted(Event):
    """SO10, AL11: a `WB Transfer to Support Officer for Service Delivery` was sent to a Generic
    Support Officer who has no `Involved Worker` relationship on the person yet: the Senior
    Officer who finished the step is prompted to record it."""

    TYPE: ClassVar[str] = "allocation.involved_worker_prompted.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str
    person_name: str | None = None
    work_item_id: uuid.UUID  # the WB Support Action Plan Delivery step the action became
    worker_position_id: str
    worker_user_id: str | None = None
    senior_officer_position_id: str | None = None
    senior_officer_user_id: str | None = None


# --- Version 2: one shape for every event that changes work items ----------------------------
# Each carries `items`, the items after the change as full snapshots (one for a change to one
# item, several for a bulk or a release), and, where the change moved them, `from_owners` in the
# order of `items`. A subscriber reads every change of work the same way. Version 1 of each
# (flat, `item`, `moved`) is published beside these while subscribers move (docs/subscribing.md);
# `BulkAssigned` had this shape already and stays version 1.


class WorkItemsChanged(Event):
    """Work items after a change: `items` (each a full snapshot)."""

    items: list[WorkItemSnapshot] = Field(max_length=BULK_ITEMS_MAX)


class _ItemChanged(WorkItemsChanged):
    """One work item changed, keyed by its person so one person's work stays in order."""

    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str
    items: list[WorkItemSnapshot] = Field(min_length=1, max_length=1)


class _ItemMoved(_ItemChanged):
    """One work item changed owner or state; `from_owners`: where it was (one, as `items`)."""

    from_owners: list[Owner] = Field(min_length=1, max_length=1)


class WorkItemCreatedV2(_ItemChanged):
    """A work item created (AL01-AL03, AC19 intake, SO09 next actions): `items` holds it."""

    TYPE: ClassVar[str] = "allocation.work_item_created.v2"

    created_at: datetime
    note: Text = ""


class WorkItemAssignedV2(_ItemMoved):
    """AL06 (incoming item to the worker's incoming work), AL09 (started item to the worker's
    incomplete work), AL07 (priority may change with it). `reassigned` is true for started
    work."""

    TYPE: ClassVar[str] = "allocation.work_item_assigned.v2"

    note: Text = ""
    reassigned: bool = False
    previous_priority: str | None = None


class WorkItemStartedV2(_ItemMoved):
    """A step was started: incoming -> incomplete (AL03)."""

    TYPE: ClassVar[str] = "allocation.work_item_started.v2"


class WorkItemPriorityChangedV2(_ItemChanged):
    """AL07: the item's priority changed."""

    TYPE: ClassVar[str] = "allocation.work_item_priority_changed.v2"

    previous_priority: str


class WorkItemMovedV2(_ItemMoved):
    """Work moved without being passed to a chosen worker by an allocator: an absent
    caseworker's cases (AC07), back to the segment hopper (AC19), or released from a removed
    position (AC16). `rule` names which."""

    TYPE: ClassVar[str] = "allocation.work_item_moved.v2"

    rule: str
    note: Text = ""


class WorkItemFinishedV2(_ItemChanged):
    """Sign-off finished the step: it is locked (SO09)."""

    TYPE: ClassVar[str] = "allocation.work_item_finished.v2"


class WorkItemReturnedV2(_ItemMoved):
    """Sign-off returned the step's request: it goes back to the incomplete work of the worker
    who completed it (SO07)."""

    TYPE: ClassVar[str] = "allocation.work_item_returned.v2"

    note: Text = ""
    request_id: uuid.UUID


class WorkItemDueV2(_ItemChanged):
    """DL02: an unfinished item's due day has arrived (raised once per item)."""

    TYPE: ClassVar[str] = "allocation.work_item_due.v2"

    due_at: datetime


class WorkItemOverdueV2(_ItemChanged):
    """DL02: an unfinished item passed its due date (raised once per item); from now on it is
    flagged overdue in every workview and the person's record."""

    TYPE: ClassVar[str] = "allocation.work_item_overdue.v2"

    due_at: datetime


class WorkItemResumedV2(_ItemMoved):
    """AL13: a step resumed by a worker from the person's current work (now theirs,
    incomplete)."""

    TYPE: ClassVar[str] = "allocation.work_item_resumed.v2"


class ServiceRequestCompletedV2(_ItemMoved):
    """AC23: the service request is completed: the work item is finished and leaves every open
    view."""

    TYPE: ClassVar[str] = "allocation.service_request_completed.v2"


class AbsentCaseworkerWorkMovedV2(WorkItemsChanged):
    """AC07: an absent caseworker's cases moved to `to_owner`, in one or more parts.
    `items` are the cases after, `from_owners` where each was. TR08: a move of more than
    BULK_EVENT_ITEMS cases is announced in `parts` events (numbered by `part` from 1, all keyed
    by the absent position, so in order), like BulkAssigned: together they are the move."""

    TYPE: ClassVar[str] = "allocation.absent_caseworker_work_moved.v2"
    KEY_FIELD: ClassVar[str | None] = "from_position_id"

    from_position_id: str
    to_owner: Owner
    items: list[WorkItemSnapshot] = Field(max_length=BULK_EVENT_ITEMS)
    from_owners: list[Owner] = Field(max_length=BULK_EVENT_ITEMS)  # in the order of `items`
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)


class PositionWorkReleasedV2(WorkItemsChanged):
    """AC16, allocation's answer in the removal saga: every item the position held has moved
    (to the successor or the hopper); `items` are those items after the move, `from_owners`
    where each was. TR08: a release of more than BULK_EVENT_ITEMS items is answered in `parts`
    events (numbered by `part` from 1, all keyed by the user, so in order), like BulkAssigned:
    the release is complete, and the saga goes on, only with the last (`part == parts`)."""

    TYPE: ClassVar[str] = "allocation.position_work_released.v2"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    release_id: uuid.UUID
    user_id: str
    position_id: str
    items: list[WorkItemSnapshot] = Field(max_length=BULK_EVENT_ITEMS)
    from_owners: list[Owner] = Field(max_length=BULK_EVENT_ITEMS)  # in the order of `items`
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)
