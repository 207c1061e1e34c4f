"""Allocation contracts: commands on `allocation.commands`, events on `allocation.events`.
Keyed by person id, so one person's work stays in order."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

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
