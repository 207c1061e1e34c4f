"""Access contracts: commands on `access.commands`, events on `access.events`, keyed by user id.

The directory events (units, users, positions) are what other services project to route and
authorise work; they can rebuild their projections by replaying access.events."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from contracts.envelope import Bounded, Command, Event
from contracts.limits import DIRECTORY_ITEMS_MAX, LIST_MAX, Text


class Role(StrEnum):
    CASEWORKER = "caseworker"
    TEAM_LEADER = "team leader"
    SEGMENT_MANAGER = "segment manager"
    SENIOR_OFFICER = "Senior Officer"
    TRUSTED_ASSESSOR = "Trusted Assessor"
    GENERIC_SUPPORT_OFFICER = "Generic Support Officer"
    HUB_TEAM_WORKER = "Hub Team worker"
    ACCESS_ADMINISTRATOR = "access administrator"  # AC20: a member of the access team (FLLS)


class AccessKind(StrEnum):
    PRIMARY = "primary"
    HIERARCHICAL = "hierarchical"
    ABSENCE = "absence-related"


class UnitKind(StrEnum):
    TEAM = "team"
    SEGMENT = "segment"
    # AC20: the access administration team (the procedure's FLLS team): whoever holds a position
    # in such a unit actions or refuses P30s.
    ACCESS_TEAM = "access team"


class UnitDefined(Event):
    """A team or segment, with its parent segment (case-group hierarchy) and its hopper."""

    TYPE: ClassVar[str] = "access.unit_defined.v1"
    KEY_FIELD: ClassVar[str | None] = "unit_id"

    unit_id: str
    name: str
    kind: UnitKind
    parent_id: str | None = None
    code: str | None = None  # segment code, e.g. FS_GB_CMEXF_000_APPEALS
    hopper_id: str | None = None


class UserRegistered(Event):
    TYPE: ClassVar[str] = "access.user_registered.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    name: str
    email: str | None = None
    line_manager_id: str | None = None
    security_clearance: bool = False


class PositionGranted(Event):
    """A user now holds a position (primary or secondary) in a team or segment."""

    TYPE: ClassVar[str] = "access.position_granted.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    position_id: str
    unit_id: str
    role: Role
    kind: AccessKind
    p30_id: uuid.UUID | None = None
    emergency: bool = False


class PositionRevoked(Event):
    TYPE: ClassVar[str] = "access.position_revoked.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    position_id: str
    p30_id: uuid.UUID | None = None


class PositionReleaseRequested(Event):
    """AC16 saga step 1: before a position is removed, allocation must move the work it holds.
    Allocation answers with allocation.position_work_released.v1 (or ..._release_failed.v1)."""

    TYPE: ClassVar[str] = "access.position_release_requested.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    release_id: uuid.UUID
    user_id: str
    position_id: str
    successor_position_id: str | None = None  # None: back to the unit's hopper


class PositionRef(Bounded):
    user_id: str
    position_id: str


# --- Directory loading -------------------------------------------------------------------------


class UnitSpec(Bounded):
    unit_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    kind: UnitKind
    parent_id: str | None = None
    code: str | None = None
    hopper_id: str | None = None
    functionally_unique: bool = False  # AC13: hierarchical access into it is warned


class UserSpec(Bounded):
    user_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    email: str | None = None
    line_manager_id: str | None = None
    security_clearance: bool = False


class PrimaryPositionSpec(Bounded):
    position_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    unit_id: str = Field(min_length=1)
    role: Role


class LoadDirectory(Command):
    """Loads (or updates) teams/segments, users and their primary positions in one command; the
    service publishes UnitDefined, UserRegistered and PositionGranted(kind=primary) for each.
    TR03: sent only by a directory administrator or an HR feed (roles of the sign-in), applied
    whole or refused whole (AC01/AC02), never moving a position to another user; audited."""

    TYPE: ClassVar[str] = "access.load_directory.v1"
    KEY_FIELD: ClassVar[str | None] = "directory_id"

    directory_id: str = "directory"
    units: list[UnitSpec] = Field(max_length=DIRECTORY_ITEMS_MAX, default_factory=list)
    users: list[UserSpec] = Field(max_length=DIRECTORY_ITEMS_MAX, default_factory=list)
    positions: list[PrimaryPositionSpec] = Field(
        max_length=DIRECTORY_ITEMS_MAX, default_factory=list
    )


class DirectoryLoaded(Event):
    TYPE: ClassVar[str] = "access.directory_loaded.v1"
    KEY_FIELD: ClassVar[str | None] = "directory_id"

    directory_id: str
    units: int
    users: int
    positions: int


# --- Secondary access commands (keyed by the user the access is for) ---------------------------


class RequestAbsenceAccess(Command):
    """AC06-AC10: one P30 carrying one or more absence-related positions (units) for a TL/SM.
    AC20: submitted by the TL/SM, approved by the case-owning TL it was discussed with
    (`discussed_with`), actioned later by the access team (ActionP30)."""

    TYPE: ClassVar[str] = "access.request_absence_access.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    unit_ids: list[str] = Field(max_length=LIST_MAX, min_length=1)
    reason: Text = ""
    discussion_held: bool = False  # AC08: the discussion with the case-owning TL took place
    discussed_with: str | None = None


class RequestEmergencyAbsenceAccess(Command):
    """AC11/AC21: the business-critical emergency request (the call to the access team),
    accepted only when nobody but the absent TL/SM holds their position's unit; the access team
    answers it (AnswerEmergencyRequest). The P30 stays outstanding until lodged (LodgeP30)."""

    TYPE: ClassVar[str] = "access.request_emergency_absence_access.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    unit_id: str = Field(min_length=1)
    absent_user_id: str = Field(min_length=1)  # AC21: the TL/SM whose absence leaves no access
    reason: Text = ""


class AnswerEmergencyRequest(Command):
    """AC21: the access team grants the emergency request at once (`grant_at` empty or not
    later than now: one command, one transaction) or, lacking capacity, answers with the time
    it will be done; the access scheduler grants it then."""

    TYPE: ClassVar[str] = "access.answer_emergency_request.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    p30_id: uuid.UUID
    grant_at: datetime | None = None


class ActionP30(Command):
    """AC20: the access team actions a submitted P30: the grant or removal it asks for happens
    now. Never by the person who asked for it or approved it."""

    TYPE: ClassVar[str] = "access.action_p30.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    p30_id: uuid.UUID


class RefuseP30(Command):
    """AC20: the access team refuses a submitted P30 (or an emergency request), with the
    reason; nothing is granted or removed."""

    TYPE: ClassVar[str] = "access.refuse_p30.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    p30_id: uuid.UUID
    reason: Text = Field(min_length=1)


class LodgeP30(Command):
    """AC11: the completed P30 that closes an outstanding emergency record."""

    TYPE: ClassVar[str] = "access.lodge_p30.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    p30_id: uuid.UUID  # the outstanding emergency P30
    reason: Text = ""
    discussion_held: bool = False
    discussed_with: str | None = None


class RequestHierarchicalAccess(Command):
    """AC12-AC14: one position (unit) per request, agreed with the higher segment's TL/SM."""

    TYPE: ClassVar[str] = "access.request_hierarchical_access.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    unit_ids: list[str] = Field(max_length=LIST_MAX, min_length=1)  # AC14: exactly one
    agreed_with: str = Field(min_length=1)  # user id of the higher segment's TL/SM
    reason: Text = ""


class RequestAccessRemoval(Command):
    """AC16: ends the `kind` record backing a secondary position; if no other record backs it,
    allocation is asked to release the position's work first (to the successor or the hopper)."""

    TYPE: ClassVar[str] = "access.request_access_removal.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    position_id: str = Field(min_length=1)
    kind: AccessKind
    reason: Text = ""
    discussion_held: bool = False  # AC08, for absence-related access
    discussed_with: str | None = None  # AC20: who approved the removal, when someone did
    successor_position_id: str | None = None


class ReviewAbsenceAccess(Command):
    """AC09: the six-monthly review; confirm keeps it for six more months, remove ends it."""

    TYPE: ClassVar[str] = "access.review_absence_access.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    grant_id: uuid.UUID
    confirm: bool
    reason: Text = ""
    successor_position_id: str | None = None


class ChangePosition(Command):
    """AC17: the user acts in another of their positions from now on."""

    TYPE: ClassVar[str] = "access.change_position.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    position_id: str = Field(min_length=1)


# --- Secondary access events ---------------------------------------------------------------------


class P30Recorded(Event):
    """AC04: a CSUA P30 record, written in the transaction of the grant or removal it covers.
    `state`: submitted (awaiting the access team, AC20), refused, complete, pending (removal
    actioned, awaiting the release of work, AC16); for an emergency request (AC21): requested,
    scheduled (the access team's time scale), outstanding (granted, awaiting the form)."""

    TYPE: ClassVar[str] = "access.p30_recorded.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    p30_id: uuid.UUID
    user_id: str
    action: str  # "set-up" | "removal"
    kind: AccessKind
    unit_ids: list[str] = Field(max_length=LIST_MAX)
    requested_by: str
    approved_by: str | None = None
    actioned_by: str | None = None  # AC20: the access team member, never the requester
    reason: Text = ""
    discussion_held: bool = False
    discussed_with: str | None = None
    state: str
    emergency: bool = False
    deadline: datetime | None = None
    warnings: list[str] = Field(max_length=LIST_MAX, default_factory=list)
    recorded_at: datetime


class AccessGrantRecorded(Event):
    """A record now backs a secondary position (PositionGranted follows only when the position
    was not already held)."""

    TYPE: ClassVar[str] = "access.grant_recorded.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    grant_id: uuid.UUID
    user_id: str
    position_id: str
    unit_id: str
    kind: AccessKind
    p30_id: uuid.UUID
    emergency: bool = False
    review_due_at: datetime | None = None
    warnings: list[str] = Field(max_length=LIST_MAX, default_factory=list)


class AccessGrantEnded(Event):
    """A backing record ended; the position stays if another record still backs it."""

    TYPE: ClassVar[str] = "access.grant_ended.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    grant_id: uuid.UUID
    user_id: str
    position_id: str
    p30_id: uuid.UUID
    position_kept: bool


class EmergencyAccessGranted(Event):
    """AC11: granted at once; tells who must lodge the P30 and by when (NT04)."""

    TYPE: ClassVar[str] = "access.emergency_access_granted.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    p30_id: uuid.UUID
    user_id: str
    position_id: str
    requested_by: str
    p30_deadline: datetime
    actioned_by: str | None = None  # AC21: the access team member (or its scheduler)


class EmergencyAccessRequested(Event):
    """AC21: an emergency request accepted, awaiting the access team's answer."""

    TYPE: ClassVar[str] = "access.emergency_access_requested.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    p30_id: uuid.UUID
    user_id: str
    unit_id: str
    absent_user_id: str
    requested_by: str


class EmergencyAccessScheduled(Event):
    """AC21: the access team lacks capacity now; the grant is made at `grant_at` (the requester
    is told, NT04)."""

    TYPE: ClassVar[str] = "access.emergency_access_scheduled.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    p30_id: uuid.UUID
    user_id: str
    unit_id: str
    requested_by: str
    answered_by: str
    grant_at: datetime


class P30Actioned(Event):
    """AC20: the access team actioned a P30; the grant or removal follows in this transaction
    (a removal's release of work, AC16, after it)."""

    TYPE: ClassVar[str] = "access.p30_actioned.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    p30_id: uuid.UUID
    user_id: str
    action: str  # "set-up" | "removal"
    kind: AccessKind
    unit_ids: list[str] = Field(max_length=LIST_MAX)
    requested_by: str
    approved_by: str | None = None
    actioned_by: str
    actioned_at: datetime


class P30Refused(Event):
    """AC20: the access team refused the P30; nothing was granted or removed."""

    TYPE: ClassVar[str] = "access.p30_refused.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    p30_id: uuid.UUID
    user_id: str
    requested_by: str
    refused_by: str
    reason: Text


class AbsenceReviewLapsed(Event):
    """AC22: an overdue review still unanswered after the grace period, under the `remove`
    policy: the access is removed through the AC16 release (P30 `p30_id`), never renewed."""

    TYPE: ClassVar[str] = "access.absence_review_lapsed.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    grant_id: uuid.UUID
    user_id: str
    position_id: str
    review_due_at: datetime
    p30_id: uuid.UUID


class P30Lodged(Event):
    """AC11: the outstanding emergency P30 is closed by the completed form."""

    TYPE: ClassVar[str] = "access.p30_lodged.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    p30_id: uuid.UUID
    user_id: str
    lodged_by: str
    lodged_at: datetime
    late: bool


class EmergencyP30Overdue(Event):
    """AC11/NT04: the emergency P30 has not arrived by its deadline."""

    TYPE: ClassVar[str] = "access.emergency_p30_overdue.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    p30_id: uuid.UUID
    user_id: str
    requested_by: str
    escalate_to: str | None = None  # the requester's line manager
    deadline: datetime


class AbsenceReviewDue(Event):
    """AC09/NT05: a six-monthly review falls due soon."""

    TYPE: ClassVar[str] = "access.absence_review_due.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    grant_id: uuid.UUID
    user_id: str
    position_id: str
    review_due_at: datetime
    responsible: list[str] = Field(max_length=LIST_MAX)


class AbsenceReviewOverdue(Event):
    """AC09/NT05: the review is overdue; escalated, never silently renewed."""

    TYPE: ClassVar[str] = "access.absence_review_overdue.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    grant_id: uuid.UUID
    user_id: str
    position_id: str
    review_due_at: datetime
    responsible: list[str] = Field(max_length=LIST_MAX)
    escalate_to: list[str] = Field(max_length=LIST_MAX, default_factory=list)


class AbsenceAccessReviewed(Event):
    TYPE: ClassVar[str] = "access.absence_access_reviewed.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    grant_id: uuid.UUID
    user_id: str
    position_id: str
    reviewed_by: str
    confirmed: bool
    next_review_due_at: datetime | None = None


class PositionRemovalFailed(Event):
    """AC16: allocation could not release the work; the removal stays pending, access stays."""

    TYPE: ClassVar[str] = "access.position_removal_failed.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    release_id: uuid.UUID
    user_id: str
    position_id: str
    reason: Text


class CurrentPositionChanged(Event):
    """AC17: views and permissions follow the selected position."""

    TYPE: ClassVar[str] = "access.current_position_changed.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    position_id: str
    previous_position_id: str | None = None
