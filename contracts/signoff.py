"""Sign-off contracts: commands on `signoff.commands`, events on `signoff.events`, keyed by
person id. Allocation reacts to `step_finished` (lock the step, create next actions' work) and
`request_returned` (the step goes back to the worker who completed it)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import ConfigDict, Field

from contracts.allocation import StepType
from contracts.envelope import Bounded, Command, Event
from contracts.limits import LIST_MAX, Text

REQUEST_NAME = "WB Transfer to Senior Officer to review information and add additional next actions"
MANAGEMENT_TEAM = "Wellbeing Service Management Team"

# The next-action types a step can record (SO04), and the step each one becomes when the step is
# finished (None: no new work). Allocation turns each sent next action into that step (SO06).
TRANSFER_TO_SUPPORT_OFFICER = "WB Transfer to Support Officer for Service Delivery"
CASE_MONITORING_ACTION = "WB Case Monitoring"
CLOSE_CASE_ACTION = "WB Close Case"
# AL13: triage's next actions send the Trusted Assessment step (routed by area, AL02).
TRUSTED_ASSESSMENT_ACTION = "WB Trusted Assessment and Support Planning"
NEXT_ACTION_STEPS: dict[str, StepType | None] = {
    TRANSFER_TO_SUPPORT_OFFICER: StepType.SUPPORT_PLAN_DELIVERY,
    TRUSTED_ASSESSMENT_ACTION: StepType.TRUSTED_ASSESSMENT,
    CASE_MONITORING_ACTION: StepType.CASE_MONITORING,
    CLOSE_CASE_ACTION: None,
}


class NextAction(Bounded):
    action_id: uuid.UUID
    action_type: str  # e.g. "WB Transfer to Support Officer for Service Delivery"
    assignee_kind: str  # "worker" (a position id) or "team"
    assignee_id: str
    note: Text = ""
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
    note: Text
    return_to_position_id: str | None  # the worker who completed the step


class DocumentAnswer(Bounded):
    """One question of a finished step's form and its answer (AL15)."""

    name: str
    label: str
    answer: Text | None = None  # as long as the answer saved (SaveStep)


class DocumentSection(Bounded):
    """A section of a finished step's form with its answers (AL15)."""

    name: str
    answers: list[DocumentAnswer] = Field(max_length=LIST_MAX)


class StepFinished(Event):
    TYPE: ClassVar[str] = "signoff.step_finished.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str
    step_type: str
    finished_by_position_id: str | None = None
    next_actions: list[NextAction] = Field(max_length=LIST_MAX)
    # AL15: the locked form's content, for the person's Documents (empty from older senders).
    sections: list[DocumentSection] = Field(default_factory=list, max_length=LIST_MAX)


# --- Commands on `signoff.commands` (keyed by person id, like the allocation events) ----------


class SendRequest(Command):
    """SO01: the step's worker sends the mandatory request to the Management Team's incoming
    requests; its title follows SO02."""

    TYPE: ClassVar[str] = "signoff.send_request.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str = Field(min_length=1)


class SaveStep(Command):
    """SO09: record answers to the step's form and save; the step stays open. Each answer is
    keyed by its field name (see the step type's form in the read API's step summary)."""

    TYPE: ClassVar[str] = "signoff.save_step.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str = Field(min_length=1)
    answers: dict[str, Text] = Field(max_length=LIST_MAX, min_length=1)


class NextActionInput(Bounded):
    """A next action as recorded (SO04): assignee is a worker (position id) or a team."""

    model_config = ConfigDict(extra="forbid")

    action_type: str = Field(min_length=1)
    assignee_kind: str  # "worker" | "team"
    assignee_id: str = Field(min_length=1)
    note: Text = ""
    priority: str = "normal"


class AddNextActions(Command):
    """SO04: add one or several next actions at once (the form's "Add" / "Add and close")."""

    TYPE: ClassVar[str] = "signoff.add_next_actions.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str = Field(min_length=1)
    actions: list[NextActionInput] = Field(max_length=LIST_MAX, min_length=1)


class ChangeNextAction(Command):
    """SO10: change a next action recorded on a step that is not yet finished."""

    TYPE: ClassVar[str] = "signoff.change_next_action.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str = Field(min_length=1)
    action_id: uuid.UUID
    action: NextActionInput


class RemoveNextAction(Command):
    """SO10: remove a next action from a step that is not yet finished."""

    TYPE: ClassVar[str] = "signoff.remove_next_action.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str = Field(min_length=1)
    action_id: uuid.UUID


class CompleteRequest(Command):
    """SO07: the Senior Officer accepts the request."""

    TYPE: ClassVar[str] = "signoff.complete_request.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    request_id: uuid.UUID
    step_id: uuid.UUID
    person_id: str = Field(min_length=1)


class ReturnRequest(Command):
    """SO07: the Senior Officer rejects the request with a note; the step is exited unfinished
    and goes back to the worker who completed it."""

    TYPE: ClassVar[str] = "signoff.return_request.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    request_id: uuid.UUID
    step_id: uuid.UUID
    person_id: str = Field(min_length=1)
    note: Text = ""


class FinishStep(Command):
    """SO05, SO08, SO09: finish (lock) the step and send its next actions."""

    TYPE: ClassVar[str] = "signoff.finish_step.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str = Field(min_length=1)


# --- Further events on `signoff.events` --------------------------------------------------------


class StepTracked(Event):
    """Sign-off has learnt of a step that goes through sign-off (from allocation.events) and
    opened its form; commands on the step are accepted from now on."""

    TYPE: ClassVar[str] = "signoff.step_tracked.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str
    step_type: str


class StepSaved(Event):
    """SO09: answers recorded; the step stays open. `incomplete_mandatory` names the mandatory
    fields still empty ("<section>/<field>")."""

    TYPE: ClassVar[str] = "signoff.step_saved.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str
    answers: dict[str, Text] = Field(max_length=LIST_MAX)
    incomplete_mandatory: list[str] = Field(max_length=LIST_MAX)
    prompted_actions: list[str] = Field(default_factory=list, max_length=LIST_MAX)


class NextActionsAdded(Event):
    """SO04: next actions recorded on an open step (sent only when the step is finished)."""

    TYPE: ClassVar[str] = "signoff.next_actions_added.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str
    next_actions: list[NextAction] = Field(max_length=LIST_MAX)


class NextActionChanged(Event):
    """SO10: a next action of an open step as it now stands."""

    TYPE: ClassVar[str] = "signoff.next_action_changed.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str
    next_action: NextAction


class NextActionRemoved(Event):
    """SO10: a next action taken off an open step (it will not be sent)."""

    TYPE: ClassVar[str] = "signoff.next_action_removed.v1"
    KEY_FIELD: ClassVar[str | None] = "person_id"

    step_id: uuid.UUID
    person_id: str
    action_id: uuid.UUID
