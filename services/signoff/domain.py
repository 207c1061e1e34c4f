"""Sign-off rules as pure functions, and the `Step` they decide on: no I/O, no clock reads. Each
cites the rule it enforces. A `Step`'s methods carry out the procedure (save, send the request,
record next actions, complete or return the request, finish): each applies the rules, changes the
step and returns the `Change` (its event, and the position that acted) for the repository to save
and the handler to emit.

Every Wellbeing step has a form (named sections of fields, some mandatory) and next actions, and
is saved and finished like any other (AL13). Two steps also go through sign-off (SO01): a
`WB Trusted Assessment and Support Planning` or `WB Support Action Plan Delivery` step's worker
fills the form and sends the mandatory request; a Senior Officer of the Management Team reviews
it, records next actions, completes or returns the request and finishes the step. Triage and
Case Monitoring are finished by the worker who holds them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
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
    TRUSTED_ASSESSMENT_ACTION,
    DocumentAnswer,
    DocumentSection,
    NextAction,
    NextActionChanged,
    NextActionInput,
    NextActionRemoved,
    NextActionsAdded,
    RequestCompleted,
    RequestReturned,
    RequestSent,
    StepFinished,
    StepSaved,
)
from services.shared.positions import Position
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
    # AL13: triage and Case Monitoring have forms and are saved and finished like the others.
    StepType.TRIAGE: (
        Section(
            "Initial risk assessment",
            (
                FormField("reason_for_referral", "Reason for referral", mandatory=True),
                FormField("risks_identified", "Risks identified", mandatory=True),
                FormField(
                    "risk_level",
                    "Level of risk",
                    mandatory=True,
                    choices=("Low", "Medium", "High"),
                ),
            ),
        ),
        Section(
            "Triage",
            (
                FormField(
                    "trusted_assessment_needed",
                    "Does the person need a Trusted Assessment and support planning?",
                    mandatory=True,
                    choices=YES_NO,
                    prompts=(("Yes", TRUSTED_ASSESSMENT_ACTION), ("No", CLOSE_CASE_ACTION)),
                ),
                FormField(
                    "monitoring_needed",
                    "Should the case be monitored meanwhile?",
                    mandatory=True,
                    choices=YES_NO,
                    prompts=(("Yes", CASE_MONITORING_ACTION),),
                ),
                FormField("triage_notes", "Triage notes", mandatory=False),
            ),
        ),
    ),
    StepType.CASE_MONITORING: (
        Section(
            "Monitoring",
            (
                FormField("contact_made", "Contact made with the person", mandatory=True),
                FormField("wellbeing_update", "How the person is doing", mandatory=True),
            ),
        ),
        Section(
            "Outcome",
            (
                FormField(
                    "case_can_close",
                    "Can the case be closed?",
                    mandatory=True,
                    choices=YES_NO,
                    prompts=(("Yes", CLOSE_CASE_ACTION), ("No", CASE_MONITORING_ACTION)),
                ),
                FormField("comments", "Comments", mandatory=False),
            ),
        ),
    ),
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

# Who works each step: SO01 for the steps under sign-off; AL13 for triage (the Hub Team worker
# it is allocated to) and Case Monitoring (whoever holds it: a Hub Team worker, the Trusted
# Assessor, or the Generic Support Officer, who may also resume it from the person's record).
WORKER_ROLES: dict[StepType, frozenset[Role]] = {
    StepType.TRIAGE: frozenset({Role.HUB_TEAM_WORKER}),
    StepType.CASE_MONITORING: frozenset(
        {Role.HUB_TEAM_WORKER, Role.TRUSTED_ASSESSOR, Role.GENERIC_SUPPORT_OFFICER}
    ),
    StepType.TRUSTED_ASSESSMENT: frozenset({Role.TRUSTED_ASSESSOR}),
    StepType.SUPPORT_PLAN_DELIVERY: frozenset({Role.GENERIC_SUPPORT_OFFICER}),
}
# SO01: the steps whose mandatory request goes to the Management Team before they finish.
SIGNOFF_STEP_TYPES = frozenset({StepType.TRUSTED_ASSESSMENT, StepType.SUPPORT_PLAN_DELIVERY})
FORM_STEP_TYPES = frozenset(FORMS)
# SO10: this next action must go to a Generic Support Officer (SO06).
ACTION_ASSIGNEE_ROLES: dict[str, Role] = {
    TRANSFER_TO_SUPPORT_OFFICER: Role.GENERIC_SUPPORT_OFFICER,
}


def has_form(step_type: str) -> bool:
    """AL13: every Wellbeing step has a form that sign-off keeps; service requests do not."""
    return step_type in {t.value for t in FORM_STEP_TYPES}


def under_signoff(step_type: StepType) -> bool:
    """SO01: the step needs the mandatory request completed before it finishes."""
    return step_type in SIGNOFF_STEP_TYPES


def roles_text(step_type: StepType) -> str:
    return " or ".join(sorted(r.value for r in WORKER_ROLES[step_type]))


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

    # The procedure. Each method applies the rules below (which raise RuleViolation), changes
    # the step and returns what changed.

    def save(self, by: Position | None, answers: dict[str, str]) -> Change:
        """SO09: record answers; the step stays open."""
        self.answers = save(self, by, answers)
        return self._changed(
            by,
            StepSaved(
                step_id=self.step_id,
                person_id=self.person_id,
                answers=self.answers,
                incomplete_mandatory=incomplete_mandatory(self.step_type, self.answers),
                prompted_actions=prompted_actions(self.step_type, self.answers),
            ),
        )

    def send_request(self, by: Position | None, request_id: uuid.UUID) -> Change:
        """SO01, SO02: the mandatory request, to the Management Team's incoming requests."""
        title = send_request(self, by)
        assert by is not None  # send_request refuses an unknown position
        self.requests.append(Request(request_id, RequestState.OUTSTANDING, by.position_id))
        return self._changed(
            by,
            RequestSent(
                request_id=request_id,
                step_id=self.step_id,
                person_id=self.person_id,
                title=title,
                team=MANAGEMENT_TEAM,
                sent_by_position_id=by.position_id,
            ),
        )

    def add_next_actions(
        self,
        by: Position | None,
        actions: list[NextActionInput],
        action_ids: list[uuid.UUID],
        known_workers: Mapping[str, str],
    ) -> Change:
        """SO03, SO04: next actions recorded on the step, in the order given."""
        added = add_next_actions(self, by, actions, action_ids, known_workers)
        self.next_actions.extend(added)
        return self._changed(
            by,
            NextActionsAdded(step_id=self.step_id, person_id=self.person_id, next_actions=added),
        )

    def change_next_action(
        self,
        by: Position | None,
        action_id: uuid.UUID,
        action: NextActionInput,
        known_workers: Mapping[str, str],
    ) -> Change:
        """SO10: a next action changed before the step is finished."""
        changed = change_next_action(self, by, action_id, action, known_workers)
        self.next_actions = [changed if a.action_id == action_id else a for a in self.next_actions]
        return self._changed(
            by,
            NextActionChanged(step_id=self.step_id, person_id=self.person_id, next_action=changed),
        )

    def remove_next_action(self, by: Position | None, action_id: uuid.UUID) -> Change:
        """SO10: a next action removed before the step is finished; it will not be sent."""
        removed = remove_next_action(self, by, action_id)
        self.next_actions = [a for a in self.next_actions if a.action_id != removed.action_id]
        return self._changed(
            by,
            NextActionRemoved(
                step_id=self.step_id, person_id=self.person_id, action_id=removed.action_id
            ),
        )

    def complete_request(self, by: Position | None, request_id: uuid.UUID) -> Change:
        """SO07: the Senior Officer accepts the outstanding request."""
        request = complete_request(self, by, request_id)
        self._resolve(request, RequestState.COMPLETED)
        return self._changed(
            by,
            RequestCompleted(
                request_id=request.request_id, step_id=self.step_id, person_id=self.person_id
            ),
        )

    def return_request(self, by: Position | None, request_id: uuid.UUID, note: str) -> Change:
        """SO07: rejected with a note; the step exits unfinished, back to the worker who
        completed it (allocation moves it on `request_returned`)."""
        return_to = return_request(self, by, request_id, note)
        self._resolve(_outstanding_request(self, request_id), RequestState.RETURNED)
        return self._changed(
            by,
            RequestReturned(
                request_id=request_id,
                step_id=self.step_id,
                person_id=self.person_id,
                note=note,
                return_to_position_id=return_to,
            ),
        )

    def finish(self, by: Position | None) -> Change:
        """SO05, SO08, SO09, AL13: lock the step and send its next actions (allocation turns
        each into new work, SO06) with the form's content for the person's Documents (AL15)."""
        actions = finish(self, by)
        assert by is not None  # finish refuses an unknown position
        self.finished = True
        return self._changed(
            by,
            StepFinished(
                step_id=self.step_id,
                person_id=self.person_id,
                step_type=self.step_type.value,
                finished_by_position_id=by.position_id,
                next_actions=actions,
                sections=document(self.step_type, self.answers),
            ),
        )

    def _resolve(self, request: Request, state: RequestState) -> None:
        self.requests = [
            Request(r.request_id, state, r.sent_by_position_id) if r == request else r
            for r in self.requests
        ]

    def _changed(self, by: Position | None, event: StepEvent) -> Change:
        return Change(step_id=self.step_id, event=event, by=by.position_id if by else None)


# What a decision on a step causes: the event that says so.
StepEvent = (
    StepSaved
    | RequestSent
    | NextActionsAdded
    | NextActionChanged
    | NextActionRemoved
    | RequestCompleted
    | RequestReturned
    | StepFinished
)


@dataclass(frozen=True)
class Change:
    """What a decision changed: the step, the event that says how (saved with the step's state
    by the repository, then emitted) and the position that acted (the rows record who)."""

    step_id: uuid.UUID
    event: StepEvent
    by: str | None


# Refusal code for a command about a step sign-off does not know (not a business rule).
UNKNOWN_STEP = "unknown-step"


def commanded(step: Step | None, step_id: uuid.UUID, person_id: str) -> Step:
    """The step a command names, if sign-off keeps it for that person."""
    if step is None or step.person_id != person_id:
        raise RuleViolation(
            UNKNOWN_STEP, f"no step {step_id} for person {person_id} under sign-off"
        )
    return step


# --- Authority ---------------------------------------------------------------------------------


def team_of(position: Position) -> str:
    """The name of the team the position sits in (its unit's id when the name is unknown)."""
    return position.unit_name or position.unit_id


def is_signoff_officer(worker: Position | None) -> bool:
    """A Senior Officer position in the Wellbeing Service Management Team."""
    return (
        worker is not None
        and worker.role == Role.SENIOR_OFFICER.value
        and team_of(worker) == MANAGEMENT_TEAM
    )


def is_step_worker(step: Step, worker: Position | None) -> bool:
    """SO01: the step type's worker role (Trusted Assessor, Generic Support Officer); when the
    step is assigned to a worker, that worker. AL13: triage and Case Monitoring are worked only
    by the worker holding them (a Generic Support Officer resumes Case Monitoring into their own
    work first, through allocation)."""
    if worker is None or worker.role not in {r.value for r in WORKER_ROLES[step.step_type]}:
        return False
    if not under_signoff(step.step_type):
        return step.owner_kind == "worker" and step.owner_id == worker.position_id
    return step.owner_kind != "worker" or step.owner_id == worker.position_id


def _who(worker: Position | None) -> str:
    if worker is None:
        return "an actor without a known position of their own"
    return f"position {worker.position_id} ({worker.role}, {team_of(worker)})"


def _require_signoff_officer(worker: Position | None, rule: str, doing: str) -> None:
    if not is_signoff_officer(worker):
        raise RuleViolation(
            rule,
            f"only a {Role.SENIOR_OFFICER.value} of the {MANAGEMENT_TEAM} may {doing}; "
            f"{_who(worker)} may not",
        )


def _require_worker_or_officer(step: Step, worker: Position | None, rule: str, doing: str) -> None:
    """The form is filled in by the step's worker and reviewed by the sign-off officer (SO03);
    a step without sign-off (triage, Case Monitoring) by the worker holding it only (AL13)."""
    if is_step_worker(step, worker):
        return
    if under_signoff(step.step_type) and is_signoff_officer(worker):
        return
    if not under_signoff(step.step_type):
        raise RuleViolation(
            "AL13",
            f"only the {roles_text(step.step_type)} holding this {step.step_type.value} step "
            f"may {doing}; {_who(worker)} may not",
        )
    raise RuleViolation(
        rule,
        f"only the step's {roles_text(step.step_type)} or a "
        f"{Role.SENIOR_OFFICER.value} of the {MANAGEMENT_TEAM} may {doing}; "
        f"{_who(worker)} may not",
    )


def _require_open(step: Step) -> None:
    """SO09: finishing locks the step; no further input."""
    if step.finished:
        raise RuleViolation("SO09", f"step {step.step_id} is finished; no further input")


# --- TR05: who reads what (the rules the commands use) ------------------------------------------


def require_reads_requests(user_id: str, workers: Sequence[Position], team: str) -> None:
    """TR05 with AL10: a team's incoming requests are read by the Senior Officers who act on
    them: the Management Team's (SO01's requests) by its Senior Officers, the sign-off officers
    of `is_signoff_officer`; another team's by a Senior Officer of that team."""

    def acts(worker: Position) -> bool:
        if team == MANAGEMENT_TEAM:
            return is_signoff_officer(worker)
        return worker.role == Role.SENIOR_OFFICER.value and team_of(worker) == team

    if not any(acts(w) for w in workers):
        raise RuleViolation(
            "AL10",
            f"{user_id} may not read the incoming requests of {team}: only a "
            f"{Role.SENIOR_OFFICER.value} of that team acts on them",
        )


def require_reads_step(user_id: str, workers: Sequence[Position], step: Step) -> None:
    """TR05 with SO01/SO03: a step under sign-off is read by those who act on it, as the
    commands decide: its worker (`is_step_worker`) and the sign-off officers
    (`is_signoff_officer`)."""
    if not any(is_step_worker(step, w) or is_signoff_officer(w) for w in workers):
        raise RuleViolation(
            "SO03",
            f"{user_id} may not read step {step.step_id}: only the step's "
            f"{roles_text(step.step_type)} or a {Role.SENIOR_OFFICER.value} of the "
            f"{MANAGEMENT_TEAM} reads it",
        )


# --- Decisions ---------------------------------------------------------------------------------


def send_request(step: Step, worker: Position | None) -> str:
    """SO01: the mandatory request is sent by the step's worker to the Management Team; at most
    one is outstanding at a time, and none once one is completed. Returns its title (SO02)."""
    _require_open(step)
    if not under_signoff(step.step_type):
        raise RuleViolation(
            "SO01",
            f"the mandatory request is sent from {[t.value for t in sorted(SIGNOFF_STEP_TYPES)]}"
            f", not from a {step.step_type.value} step",
        )
    if not is_step_worker(step, worker):
        raise RuleViolation(
            "SO01",
            f"the request is sent from a {step.step_type.value} step by its "
            f"{roles_text(step.step_type)}; {_who(worker)} may not",
        )
    states = {r.state for r in step.requests}
    if RequestState.OUTSTANDING in states:
        raise RuleViolation("SO01", "the request is already outstanding on this step")
    if RequestState.COMPLETED in states:
        raise RuleViolation("SO01", "the request on this step has already been completed")
    return title(step.step_type)


def save(step: Step, worker: Position | None, answers: dict[str, str]) -> dict[str, str]:
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


def _next_action(
    step: Step,
    worker: Position | None,
    action: NextActionInput,
    action_id: uuid.UUID,
    known_workers: Mapping[str, str],
) -> NextAction:
    """SO04: a known action type, an assignee (a team, or a worker position the directory knows:
    `known_workers`, position id -> role), a priority, and a note when it passes the work to
    another worker or team. SO10: `WB Transfer to Support Officer for Service Delivery` goes to
    a Generic Support Officer."""
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
    required = ACTION_ASSIGNEE_ROLES.get(action.action_type)
    if required is not None and (
        action.assignee_kind != "worker" or known_workers.get(action.assignee_id) != required
    ):
        raise RuleViolation(
            "SO10",
            f"{action.action_type!r} must be assigned to a {required.value} (pass to worker), "
            f"not to {action.assignee_kind} {action.assignee_id}",
        )
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
    return NextAction(action_id=action_id, **action.model_dump())


def add_next_actions(
    step: Step,
    worker: Position | None,
    actions: list[NextActionInput],
    action_ids: list[uuid.UUID],
    known_workers: Mapping[str, str],
) -> list[NextAction]:
    """SO04: one or several next actions at once, recorded by the step's worker (prompted by
    the answers) or the sign-off officer (SO03)."""
    _require_open(step)
    _require_worker_or_officer(step, worker, "SO04", "add next actions")
    return [
        _next_action(step, worker, action, action_id, known_workers)
        for action, action_id in zip(actions, action_ids, strict=True)
    ]


def _recorded_action(step: Step, action_id: uuid.UUID) -> NextAction:
    found = next((a for a in step.next_actions if a.action_id == action_id), None)
    if found is None:
        raise RuleViolation("SO10", f"no next action {action_id} on step {step.step_id}")
    return found


def change_next_action(
    step: Step,
    worker: Position | None,
    action_id: uuid.UUID,
    action: NextActionInput,
    known_workers: Mapping[str, str],
) -> NextAction:
    """SO10: until the step is finished a next action can be changed, by those who may add
    one, under the rules of adding (SO04)."""
    _require_open(step)
    _require_worker_or_officer(step, worker, "SO10", "change next actions")
    _recorded_action(step, action_id)
    return _next_action(step, worker, action, action_id, known_workers)


def remove_next_action(step: Step, worker: Position | None, action_id: uuid.UUID) -> NextAction:
    """SO10: until the step is finished a next action can be removed."""
    _require_open(step)
    _require_worker_or_officer(step, worker, "SO10", "remove next actions")
    return _recorded_action(step, action_id)


def _outstanding_request(step: Step, request_id: uuid.UUID) -> Request:
    request = next((r for r in step.requests if r.request_id == request_id), None)
    if request is None:
        raise RuleViolation("SO07", f"no request {request_id} on step {step.step_id}")
    if request.state is not RequestState.OUTSTANDING:
        raise RuleViolation(
            "SO07", f"request {request_id} is {request.state.value}, not outstanding"
        )
    return request


def complete_request(step: Step, worker: Position | None, request_id: uuid.UUID) -> Request:
    """SO07: the Senior Officer completes (accepts) an outstanding request."""
    _require_open(step)
    _require_signoff_officer(worker, "SO07", "complete a request")
    return _outstanding_request(step, request_id)


def return_request(
    step: Step, worker: Position | None, request_id: uuid.UUID, note: str
) -> str | None:
    """SO07: returning (rejecting) needs a note saying why; the step is exited, not finished,
    and goes back to the worker who completed it. Returns that worker's position id."""
    _require_open(step)
    _require_signoff_officer(worker, "SO07", "return a request")
    request = _outstanding_request(step, request_id)
    if not note.strip():
        raise RuleViolation("SO07", "returning a request needs a note saying why")
    return request.sent_by_position_id


def finish(step: Step, worker: Position | None) -> list[NextAction]:
    """SO09: finishing locks the step and sends each next action. SO05: not without a next
    action. SO08: not while a mandatory field is incomplete or a request is outstanding. SO01:
    a step under sign-off is finished by the sign-off officer once the mandatory request has
    been completed; AL13: triage and Case Monitoring by the worker holding them. Returns the next
    actions to send."""
    _require_open(step)
    if under_signoff(step.step_type):
        _require_signoff_officer(worker, "SO09", "finish a step under sign-off")
    elif not is_step_worker(step, worker):
        raise RuleViolation(
            "AL13",
            f"only the {roles_text(step.step_type)} holding this {step.step_type.value} step "
            f"may finish it; {_who(worker)} may not",
        )
    if not step.next_actions:
        raise RuleViolation("SO05", "a step cannot be finished without at least one next action")
    missing = incomplete_mandatory(step.step_type, step.answers)
    if missing:
        raise RuleViolation("SO08", f"mandatory fields incomplete: {', '.join(missing)}")
    if step.outstanding():
        raise RuleViolation("SO08", "a request on this step is still outstanding")
    if under_signoff(step.step_type) and not any(
        r.state is RequestState.COMPLETED for r in step.requests
    ):
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


def document(step_type: StepType, answers: Mapping[str, str]) -> list[DocumentSection]:
    """AL15: a finished step's content for the person's Documents: each section of its form
    with the questions and the answers given."""
    return [
        DocumentSection(
            name=s.name,
            answers=[
                DocumentAnswer(name=f.name, label=f.label, answer=answers.get(f.name))
                for f in s.fields
            ],
        )
        for s in FORMS[step_type]
    ]
