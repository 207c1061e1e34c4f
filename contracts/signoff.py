"""Sign-off contracts: commands on `signoff.commands`, events on `signoff.events`, keyed by
person id. Allocation reacts to `step_finished` (lock the step, create next actions' work) and
`request_returned` (the step goes back to the worker who completed it)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import BaseModel

from contracts.envelope import Event


class NextAction(BaseModel):
    action_id: uuid.UUID
    action_type: str  # e.g. "WB Transfer to Support Officer for Service Delivery"
    assignee_kind: str  # "worker" (a position id) or "team"
    assignee_id: str
    note: str = ""
    priority: str = "normal"


class RequestSent(Event):
    TYPE: ClassVar[str] = "signoff.request_sent.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    request_id: uuid.UUID
    step_id: uuid.UUID  # the allocation work item id of the step
    person_id: str
    title: str
    team: str
    sent_by_position_id: str | None = None


class RequestCompleted(Event):
    TYPE: ClassVar[str] = "signoff.request_completed.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    request_id: uuid.UUID
    step_id: uuid.UUID
    person_id: str


class RequestReturned(Event):
    TYPE: ClassVar[str] = "signoff.request_returned.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    request_id: uuid.UUID
    step_id: uuid.UUID
    person_id: str
    note: str
    return_to_position_id: str | None  # the worker who completed the step


class StepFinished(Event):
    TYPE: ClassVar[str] = "signoff.step_finished.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str
    step_type: str
    finished_by_position_id: str | None = None
    next_actions: list[NextAction]
