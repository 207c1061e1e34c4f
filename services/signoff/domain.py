"""Sign-off rules as pure functions: no I/O, no clock reads. Each cites the rule it enforces.

A step under sign-off (`WB Trusted Assessment and Support Planning` or `WB Support Action Plan
Delivery`) has a form (named sections of fields, some mandatory), next actions, and requests. Its
worker fills the form and sends the mandatory request (SO01); a Senior Officer of the Management
Team reviews it, records next actions, completes or returns the request and finishes the step.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from contracts.access import Role
from contracts.allocation import Priority, StepType
from contracts.signoff import (
    CASE_MONITORING_ACTION,
    CLOSE_CASE_ACTION,
    MANAGEMENT_TEAM,
    NEXT_ACTION_STEPS,
    REQUEST_NAME,
    TRANSFER_TO_SUPPORT_OFFICER,
    NextAction,
    NextActionInput,
)
from services.shared.rules import RuleViolation

NEXT_ACTIONS_SECTION = "Next actions"
PRIORITIES = tuple(p.value for p in Priority)
ASSIGNEE_KINDS = ("worker", "team")


# --- Forms -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    mandatory: bool
    choices: tuple[str, ...] = ()
    # Answers that prompt the worker to add a next action (seed: "prompted to add certain
    # actions based on the answers to the questions within the form").
    prompts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Section:
    name: str
    fields: tuple[FormField, ...]


YES_NO = ("Yes", "No")

# The form of each step type under sign-off. The "Next actions" section is always the last
# section of a form; it holds the next actions rather than fields.
FORMS: dict[StepType, tuple[Section, ...]] = {
    StepType.TRUSTED_ASSESSMENT: (
        Section(
            "Assessment",
            (
                FormField("what_matters", "What matters to the person", mandatory=True),
                FormField("presenting_needs", "Presenting needs", mandatory=True),
                FormField("risks", "Risks identified", mandatory=False),
            ),
        ),
        Section(
            "Support planning",
            (
                FormField("support_plan", "Agreed support plan", mandatory=True),
                FormField(
                    "progressing_to_support_officer",
                    "Is the case progressing to a Generic Support Officer?",
                    mandatory=True,
                    choices=YES_NO,
                    prompts=(("Yes", TRANSFER_TO_SUPPORT_OFFICER),),
                ),
            ),
        ),
    ),
    StepType.SUPPORT_PLAN_DELIVERY: (
        Section(
            "Support delivery",
            (
                FormField("actions_delivered", "Support actions delivered", mandatory=True),
                FormField("outcomes", "Outcomes achieved", mandatory=True),
            ),
        ),
        Section(
            "Review",
            (
                FormField(
                    "further_support_needed",
                    "Is further support or monitoring needed?",
                    mandatory=True,
                    choices=YES_NO,
                    prompts=(("Yes", CASE_MONITORING_ACTION), ("No", CLOSE_CASE_ACTION)),
                ),
                FormField("comments", "Comments", mandatory=False),
            ),
        ),
    ),
}

# SO01: who sends the mandatory request from each step type.
WORKER_ROLE: dict[StepType, Role] = {
    StepType.TRUSTED_ASSESSMENT: Role.TRUSTED_ASSESSOR,
    StepType.SUPPORT_PLAN_DELIVERY: Role.GENERIC_SUPPORT_OFFICER,
}
SIGNOFF_STEP_TYPES = frozenset(FORMS)


def goes_through_signoff(step_type: str) -> bool:
    return step_type in {t.value for t in SIGNOFF_STEP_TYPES}


def form_fields(step_type: StepType) -> dict[str, tuple[Section, FormField]]:
    return {f.name: (s, f) for s in FORMS[step_type] for f in s.fields}


def incomplete_mandatory(step_type: StepType, answers: dict[str, str]) -> list[str]:
    """SO08: the mandatory fields still empty, as "<section>/<field>"."""
    return [
        f"{s.name}/{f.name}"
        for s in FORMS[step_type]
        for f in s.fields
        if f.mandatory and not answers.get(f.name, "").strip()
    ]


def prompted_actions(step_type: StepType, answers: dict[str, str]) -> list[str]:
    """The next actions the answers prompt for, in form order."""
    return [
        action
        for s in FORMS[step_type]
        for f in s.fields
        for answer, action in f.prompts
        if answers.get(f.name, "").strip() == answer
    ]


def title(step_type: StepType) -> str:
    """SO02: the request name followed by the name of the step it was sent from."""
    return f"{REQUEST_NAME} - {step_type.value}"


# --- State -------------------------------------------------------------------------------------


class RequestState(StrEnum):
    OUTSTANDING = "outstanding"
    COMPLETED = "completed"
    RETURNED = "returned"


@dataclass(frozen=True)
class Worker:
    """The acting position as the directory knows it; `team` is its unit's name."""

    position_id: str
    role: str
    team: str


@dataclass(frozen=True)
class Request:
    request_id: uuid.UUID
    state: RequestState
    sent_by_position_id: str | None


@dataclass
class Step:
    step_id: uuid.UUID
    person_id: str
    step_type: StepType
    owner_kind: str
    owner_id: str
    finished: bool = False
    answers: dict[str, str] = field(default_factory=dict)
    next_actions: list[NextAction] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def outstanding(self) -> list[Request]:
        return [r for r in self.requests if r.state is RequestState.OUTSTANDING]


# --- Authority ---------------------------------------------------------------------------------


def is_signoff_officer(worker: Worker | None) -> bool:
    """A Senior Officer position in the Wellbeing Service Management Team."""
    return (
        worker is not None
        and worker.role == Role.SENIOR_OFFICER.value
        and worker.team == MANAGEMENT_TEAM
    )


def is_step_worker(step: Step, worker: Worker | None) -> bool:
    """SO01: the step type's worker role (Trusted Assessor, Generic Support Officer); when the
    step is assigned to a worker, that worker."""
    if worker is None or worker.role != WORKER_ROLE[step.step_type].value:
        return False
    return step.owner_kind != "worker" or step.owner_id == worker.position_id


def _who(worker: Worker | None) -> str:
    if worker is None:
        return "an actor without a known position of their own"
    return f"position {worker.position_id} ({worker.role}, {worker.team})"


def _require_signoff_officer(worker: Worker | None, rule: str, doing: str) -> None:
    if not is_signoff_officer(worker):
        raise RuleViolation(
            rule,
            f"only a {Role.SENIOR_OFFICER.value} of the {MANAGEMENT_TEAM} may {doing}; "
            f"{_who(worker)} may not",
        )


def _require_worker_or_officer(step: Step, worker: Worker | None, rule: str, doing: str) -> None:
    """The form is filled in by the step's worker and reviewed by the sign-off officer (SO03)."""
    if not (is_step_worker(step, worker) or is_signoff_officer(worker)):
        raise RuleViolation(
            rule,
            f"only the step's {WORKER_ROLE[step.step_type].value} or a "
            f"{Role.SENIOR_OFFICER.value} of the {MANAGEMENT_TEAM} may {doing}; "
            f"{_who(worker)} may not",
        )


def _require_open(step: Step) -> None:
    """SO09: finishing locks the step; no further input."""
    if step.finished:
        raise RuleViolation("SO09", f"step {step.step_id} is finished; no further input")


# --- TR05: who reads what (the rules the commands use) ------------------------------------------


def require_reads_requests(user_id: str, workers: Sequence[Worker], team: str) -> None:
    """TR05 with AL10: a team's incoming requests are read by the Senior Officers who act on
    them: the Management Team's (SO01's requests) by its Senior Officers, the sign-off officers
    of `is_signoff_officer`; another team's by a Senior Officer of that team."""

    def acts(worker: Worker) -> bool:
        if team == MANAGEMENT_TEAM:
            return is_signoff_officer(worker)
        return worker.role == Role.SENIOR_OFFICER.value and worker.team == team

    if not any(acts(w) for w in workers):
        raise RuleViolation(
            "AL10",
            f"{user_id} may not read the incoming requests of {team}: only a "
            f"{Role.SENIOR_OFFICER.value} of that team acts on them",
        )


def require_reads_step(user_id: str, workers: Sequence[Worker], step: Step) -> None:
    """TR05 with SO01/SO03: a step under sign-off is read by those who act on it, as the
    commands decide: its worker (`is_step_worker`) and the sign-off officers
    (`is_signoff_officer`)."""
    if not any(is_step_worker(step, w) or is_signoff_officer(w) for w in workers):
        raise RuleViolation(
            "SO03",
            f"{user_id} may not read step {step.step_id}: only the step's "
            f"{WORKER_ROLE[step.step_type].value} or a {Role.SENIOR_OFFICER.value} of the "
            f"{MANAGEMENT_TEAM} reads it",
        )


# --- Decisions ---------------------------------------------------------------------------------


def send_request(step: Step, worker: Worker | None) -> str:
    """SO01: the mandatory request is sent by the step's worker to the Management Team; at most
    one is outstanding at a time, and none once one is completed. Returns its title (SO02)."""
    _require_open(step)
    if not is_step_worker(step, worker):
        raise RuleViolation(
            "SO01",
            f"the request is sent from a {step.step_type.value} step by its "
            f"{WORKER_ROLE[step.step_type].value}; {_who(worker)} may not",
        )
    states = {r.state for r in step.requests}
    if RequestState.OUTSTANDING in states:
        raise RuleViolation("SO01", "the request is already outstanding on this step")
    if RequestState.COMPLETED in states:
        raise RuleViolation("SO01", "the request on this step has already been completed")
    return title(step.step_type)


def save(step: Step, worker: Worker | None, answers: dict[str, str]) -> dict[str, str]:
    """SO09: record answers and save; the step stays open. Answers go to fields of the step
    type's form (a choice field takes one of its choices). Returns all answers after saving."""
    _require_open(step)
    _require_worker_or_officer(step, worker, "SO09", "save the step")
    fields = form_fields(step.step_type)
    unknown = sorted(set(answers) - set(fields))
    if unknown:
        raise RuleViolation(
            "SO09", f"no field {', '.join(unknown)} on the {step.step_type.value} form"
        )
    for name, answer in answers.items():
        _, f = fields[name]
        if f.choices and answer.strip() and answer.strip() not in f.choices:
            raise RuleViolation(
                "SO09", f"{f.label!r} takes one of {list(f.choices)}, not {answer!r}"
            )
    return {**step.answers, **answers}


def add_next_actions(
    step: Step,
    worker: Worker | None,
    actions: list[NextActionInput],
    action_ids: list[uuid.UUID],
    known_workers: set[str],
) -> list[NextAction]:
    """SO04: each next action has a known action type, an assignee (a team, or a worker
    position the directory knows: `known_workers`), a priority,
    and a note when it passes the work to another worker or team; several at once. Recorded by
    the step's worker (prompted by the answers) or the sign-off officer (SO03)."""
    _require_open(step)
    _require_worker_or_officer(step, worker, "SO04", "add next actions")
    added = []
    for action, action_id in zip(actions, action_ids, strict=True):
        if action.action_type not in NEXT_ACTION_STEPS:
            raise RuleViolation(
                "SO04",
                f"unknown action type {action.action_type!r}; one of {list(NEXT_ACTION_STEPS)}",
            )
        if action.assignee_kind not in ASSIGNEE_KINDS:
            raise RuleViolation(
                "SO04",
                f"assignee must be one of {list(ASSIGNEE_KINDS)}, not {action.assignee_kind!r}",
            )
        if action.assignee_kind == "worker" and action.assignee_id not in known_workers:
            raise RuleViolation("SO04", f"no active worker position {action.assignee_id}")
        if action.priority not in PRIORITIES:
            raise RuleViolation(
                "SO04", f"priority must be one of {list(PRIORITIES)}, not {action.priority!r}"
            )
        to_self = (
            worker is not None
            and action.assignee_kind == "worker"
            and action.assignee_id == worker.position_id
        )
        if not to_self and not action.note.strip():
            raise RuleViolation(
                "SO04",
                f"a note is expected when passing {action.action_type!r} to another "
                f"{action.assignee_kind} ({action.assignee_id})",
            )
        added.append(NextAction(action_id=action_id, **action.model_dump()))
    return added


def _outstanding_request(step: Step, request_id: uuid.UUID) -> Request:
    request = next((r for r in step.requests if r.request_id == request_id), None)
    if request is None:
        raise RuleViolation("SO07", f"no request {request_id} on step {step.step_id}")
    if request.state is not RequestState.OUTSTANDING:
        raise RuleViolation(
            "SO07", f"request {request_id} is {request.state.value}, not outstanding"
        )
    return request


def complete_request(step: Step, worker: Worker | None, request_id: uuid.UUID) -> Request:
    """SO07: the Senior Officer completes (accepts) an outstanding request."""
    _require_open(step)
    _require_signoff_officer(worker, "SO07", "complete a request")
    return _outstanding_request(step, request_id)


def return_request(
    step: Step, worker: Worker | None, request_id: uuid.UUID, note: str
) -> str | None:
    """SO07: returning (rejecting) needs a note saying why; the step is exited, not finished,
    and goes back to the worker who completed it. Returns that worker's position id."""
    _require_open(step)
    _require_signoff_officer(worker, "SO07", "return a request")
    request = _outstanding_request(step, request_id)
    if not note.strip():
        raise RuleViolation("SO07", "returning a request needs a note saying why")
    return request.sent_by_position_id


def finish(step: Step, worker: Worker | None) -> list[NextAction]:
    """SO09: finishing locks the step and sends each next action. SO05: not without a next
    action. SO08: not while a mandatory field is incomplete or a request is outstanding. SO01:
    not before the mandatory request has been completed. Returns the next actions to send."""
    _require_open(step)
    _require_signoff_officer(worker, "SO09", "finish a step under sign-off")
    if not step.next_actions:
        raise RuleViolation("SO05", "a step cannot be finished without at least one next action")
    missing = incomplete_mandatory(step.step_type, step.answers)
    if missing:
        raise RuleViolation("SO08", f"mandatory fields incomplete: {', '.join(missing)}")
    if step.outstanding():
        raise RuleViolation("SO08", "a request on this step is still outstanding")
    if not any(r.state is RequestState.COMPLETED for r in step.requests):
        raise RuleViolation(
            "SO01", f"the mandatory request {REQUEST_NAME!r} has not been sent and completed"
        )
    return list(step.next_actions)


def sections_view(step_type: StepType, answers: dict[str, str]) -> list[dict[str, object]]:
    """SO03: the step's sections as the Senior Officer reviews them, "Next actions" last."""
    sections: list[dict[str, object]] = [
        {
            "name": s.name,
            "fields": [
                {
                    "name": f.name,
                    "label": f.label,
                    "mandatory": f.mandatory,
                    "choices": list(f.choices),
                    "answer": answers.get(f.name),
                    "filled": bool(answers.get(f.name, "").strip()),
                }
                for f in s.fields
            ],
        }
        for s in FORMS[step_type]
    ]
    return [*sections, {"name": NEXT_ACTIONS_SECTION, "fields": []}]
