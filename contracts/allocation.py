"""Allocation contracts: commands on `allocation.commands`, events on `allocation.events`.
Keyed by person id, so one person's work stays in order."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, Field

from contracts.envelope import Command, Event


class StepType(StrEnum):
    TRIAGE = "WB Initial Risk Assessment and Triage"
    TRUSTED_ASSESSMENT = "WB Trusted Assessment and Support Planning"
    CASE_MONITORING = "WB Case Monitoring"
    SUPPORT_PLAN_DELIVERY = "WB Support Action Plan Delivery"


class WorkState(StrEnum):
    INCOMING = "incoming"
    INCOMPLETE = "incomplete"
    FINISHED = "finished"


class Area(StrEnum):
    NORTH = "North"
    SOUTH = "South"


class ReceiveReferral(Command):
    """An external referral (AL01): creates the triage step in the Hub Team's incoming work."""

    TYPE: ClassVar[str] = "allocation.receive_referral.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    person_id: str = Field(min_length=1)
    person_name: str = Field(min_length=1)
    area: str | None = None
    reason: str = ""


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


class Owner(BaseModel):
    """Who holds a work item: a team's queue, an inbox, a team or segment hopper, or a worker
    position (`kind="worker"`, `id` = position id)."""

    kind: str  # "team" | "inbox" | "hopper" | "worker"
    id: str


# --- Access-removal saga, allocation's half (AC16) -------------------------------------------
# The access service publishes `access.position_release_requested.v1` on access.events; the
# allocation service moves every item held by that position (to the hopper or the successor) in
# one transaction and answers with one of these two events on allocation.events.


class ReleasedItem(BaseModel):
    work_item_id: uuid.UUID
    person_id: str
    to_owner: Owner


class PositionWorkReleased(Event):
    TYPE: ClassVar[str] = "allocation.position_work_released.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    release_id: uuid.UUID
    user_id: str
    position_id: str
    moved: list[ReleasedItem]


class PositionWorkReleaseFailed(Event):
    TYPE: ClassVar[str] = "allocation.position_work_release_failed.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    release_id: uuid.UUID
    user_id: str
    position_id: str
    reason: str
