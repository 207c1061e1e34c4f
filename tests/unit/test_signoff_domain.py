"""Sign-off rules as pure functions: no broker, no database."""

from __future__ import annotations

import uuid

import pytest

from contracts.access import Role
from contracts.allocation import StepType
from contracts.signoff import (
    CASE_MONITORING_ACTION,
    CLOSE_CASE_ACTION,
    MANAGEMENT_TEAM,
    REQUEST_NAME,
    TRANSFER_TO_SUPPORT_OFFICER,
    TRUSTED_ASSESSMENT_ACTION,
    NextActionInput,
)
from services.shared.positions import Position
from services.shared.rules import RuleViolation
from services.signoff import domain
from services.signoff.domain import Request, RequestState, Step


def position(position_id: str, role: str, team: str) -> Position:
    """A position in the named team, as sign-off's repository gives it to the rules."""
    return Position(position_id, f"user-{position_id}", team, role, "primary", False, True, team)


SENIOR_OFFICER = position("pos-so", Role.SENIOR_OFFICER.value, MANAGEMENT_TEAM)
NORTH_SENIOR_OFFICER = position(
    "pos-so-n", Role.SENIOR_OFFICER.value, "Wellbeing Service North Team"
)
TRUSTED_ASSESSOR = position("pos-ta", Role.TRUSTED_ASSESSOR.value, "Wellbeing Service North Team")
OTHER_ASSESSOR = position("pos-ta2", Role.TRUSTED_ASSESSOR.value, "Wellbeing Service North Team")
SUPPORT_OFFICER = position(
    "pos-gso", Role.GENERIC_SUPPORT_OFFICER.value, "Wellbeing Service North Team"
)
HUB_WORKER = position("pos-hub", Role.HUB_TEAM_WORKER.value, "Wellbeing Service Hub Team")
OTHER_HUB_WORKER = position("pos-hub2", Role.HUB_TEAM_WORKER.value, "Wellbeing Service Hub Team")
# The worker positions the directory knows, with their roles (SO04, SO10).
KNOWN = {
    SUPPORT_OFFICER.position_id: SUPPORT_OFFICER.role,
    TRUSTED_ASSESSOR.position_id: TRUSTED_ASSESSOR.role,
    HUB_WORKER.position_id: HUB_WORKER.role,
}
COMPLETE_TRIAGE_ANSWERS = {
    "reason_for_referral": "Lonely since moving",
    "risks_identified": "Falls",
    "risk_level": "Medium",
    "trusted_assessment_needed": "Yes",
    "monitoring_needed": "Yes",
}
COMPLETE_TA_ANSWERS = {
    "what_matters": "Staying at home",
    "presenting_needs": "Help with shopping",
    "support_plan": "Weekly visits",
    "progressing_to_support_officer": "Yes",
}


def _step(step_type: StepType = StepType.TRUSTED_ASSESSMENT, **kwargs: object) -> Step:
    values: dict[str, object] = {
        "step_id": uuid.uuid4(),
        "person_id": "P-1",
        "step_type": step_type,
        "owner_kind": "worker",
        "owner_id": TRUSTED_ASSESSOR.position_id,
    }
    values.update(kwargs)
    return Step(**values)  # type: ignore[arg-type]


def _transfer(note: str = "Please start delivery") -> NextActionInput:
    return NextActionInput(
        action_type=TRANSFER_TO_SUPPORT_OFFICER,
        assignee_kind="worker",
        assignee_id=SUPPORT_OFFICER.position_id,
        note=note,
        priority="high",
    )


def _ready_to_finish() -> Step:
    step = _step(answers=dict(COMPLETE_TA_ANSWERS))
    step.next_actions = domain.add_next_actions(
        step, SENIOR_OFFICER, [_transfer()], [uuid.uuid4()], KNOWN
    )
    step.requests = [Request(uuid.uuid4(), RequestState.COMPLETED, TRUSTED_ASSESSOR.position_id)]
    return step


def _rule(exc: pytest.ExceptionInfo[RuleViolation]) -> str:
    return exc.value.rule


# --- SO01 / SO02 -------------------------------------------------------------------------------


def test_so01_trusted_assessor_sends_from_trusted_assessment_with_so02_title() -> None:
    title = domain.send_request(_step(), TRUSTED_ASSESSOR)
    assert title == f"{REQUEST_NAME} - {StepType.TRUSTED_ASSESSMENT.value}"


def test_so01_support_officer_sends_from_support_action_plan_delivery() -> None:
    step = _step(StepType.SUPPORT_PLAN_DELIVERY, owner_id=SUPPORT_OFFICER.position_id)
    assert domain.send_request(step, SUPPORT_OFFICER).endswith(StepType.SUPPORT_PLAN_DELIVERY.value)


@pytest.mark.parametrize(
    ("step_type", "owner_id", "worker"),
    [
        (StepType.TRUSTED_ASSESSMENT, "pos-ta", SUPPORT_OFFICER),
        (StepType.SUPPORT_PLAN_DELIVERY, "pos-gso", TRUSTED_ASSESSOR),
        (StepType.TRUSTED_ASSESSMENT, "pos-ta", SENIOR_OFFICER),
        (StepType.TRUSTED_ASSESSMENT, "pos-ta", OTHER_ASSESSOR),  # not the step's worker
        (StepType.TRUSTED_ASSESSMENT, "pos-ta", None),
    ],
)
def test_so01_request_refused_for_wrong_sender(
    step_type: StepType, owner_id: str, worker: Position | None
) -> None:
    with pytest.raises(RuleViolation) as exc:
        domain.send_request(_step(step_type, owner_id=owner_id), worker)
    assert _rule(exc) == "SO01"


def test_so01_team_held_step_may_be_sent_by_any_worker_of_the_role() -> None:
    step = _step(owner_kind="team", owner_id="Wellbeing Service North Team")
    assert domain.send_request(step, OTHER_ASSESSOR)


def test_so01_one_outstanding_request_at_a_time_and_none_after_completion() -> None:
    for state in (RequestState.OUTSTANDING, RequestState.COMPLETED):
        step = _step(requests=[Request(uuid.uuid4(), state, TRUSTED_ASSESSOR.position_id)])
        with pytest.raises(RuleViolation) as exc:
            domain.send_request(step, TRUSTED_ASSESSOR)
        assert _rule(exc) == "SO01"
    returned = _step(
        requests=[Request(uuid.uuid4(), RequestState.RETURNED, TRUSTED_ASSESSOR.position_id)]
    )
    assert domain.send_request(returned, TRUSTED_ASSESSOR)


def test_so01_only_the_two_step_types_go_through_signoff() -> None:
    assert domain.under_signoff(StepType.TRUSTED_ASSESSMENT)
    assert domain.under_signoff(StepType.SUPPORT_PLAN_DELIVERY)
    assert not domain.under_signoff(StepType.TRIAGE)
    assert not domain.under_signoff(StepType.CASE_MONITORING)
    with pytest.raises(RuleViolation) as exc:
        domain.send_request(_step(StepType.TRIAGE, owner_id=HUB_WORKER.position_id), HUB_WORKER)
    assert _rule(exc) == "SO01"


def test_al13_every_wellbeing_step_has_a_form_service_requests_none() -> None:
    for step_type in (
        StepType.TRIAGE,
        StepType.TRUSTED_ASSESSMENT,
        StepType.CASE_MONITORING,
        StepType.SUPPORT_PLAN_DELIVERY,
    ):
        assert domain.has_form(step_type.value)
        assert domain.sections_view(step_type, {})[-1]["name"] == domain.NEXT_ACTIONS_SECTION
    assert not domain.has_form(StepType.SERVICE_REQUEST.value)


# --- SO03 / SO04 -------------------------------------------------------------------------------


def test_so04_several_next_actions_at_once_with_type_assignee_note_priority() -> None:
    step = _step()
    ids = [uuid.uuid4(), uuid.uuid4()]
    monitor = NextActionInput(
        action_type=CASE_MONITORING_ACTION,
        assignee_kind="team",
        assignee_id="Wellbeing Service Hub Team",
        note="Keep an eye",
    )
    added = domain.add_next_actions(step, SENIOR_OFFICER, [_transfer(), monitor], ids, KNOWN)
    assert [a.action_id for a in added] == ids
    assert [(a.action_type, a.assignee_kind, a.priority) for a in added] == [
        (TRANSFER_TO_SUPPORT_OFFICER, "worker", "high"),
        (CASE_MONITORING_ACTION, "team", "normal"),
    ]


def test_so04_note_expected_when_passing_to_another_worker_or_team_not_to_self() -> None:
    step = _step()
    with pytest.raises(RuleViolation) as exc:
        domain.add_next_actions(step, SENIOR_OFFICER, [_transfer(note=" ")], [uuid.uuid4()], KNOWN)
    assert _rule(exc) == "SO04"
    to_self = NextActionInput(
        action_type=CASE_MONITORING_ACTION, assignee_kind="worker", assignee_id="pos-ta"
    )
    assert domain.add_next_actions(
        step, TRUSTED_ASSESSOR, [to_self], [uuid.uuid4()], {"pos-ta": Role.TRUSTED_ASSESSOR.value}
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"action_type": "Make tea"},
        {"assignee_kind": "segment"},
        {"priority": "whenever"},
        {"assignee_id": "pos-nobody"},
    ],
)
def test_so04_unknown_action_type_assignee_or_priority_refused(bad: dict[str, str]) -> None:
    action = _transfer().model_copy(update=bad)
    with pytest.raises(RuleViolation) as exc:
        domain.add_next_actions(_step(), SENIOR_OFFICER, [action], [uuid.uuid4()], KNOWN)
    assert _rule(exc) == "SO04"


def test_so03_next_actions_by_the_steps_worker_or_the_signoff_officer_only() -> None:
    for worker in (NORTH_SENIOR_OFFICER, SUPPORT_OFFICER, None):
        with pytest.raises(RuleViolation) as exc:
            domain.add_next_actions(_step(), worker, [_transfer()], [uuid.uuid4()], KNOWN)
        assert _rule(exc) == "SO04"


def test_so04_answers_prompt_next_actions() -> None:
    assert domain.prompted_actions(StepType.TRUSTED_ASSESSMENT, COMPLETE_TA_ANSWERS) == [
        TRANSFER_TO_SUPPORT_OFFICER
    ]
    no = {**COMPLETE_TA_ANSWERS, "progressing_to_support_officer": "No"}
    assert domain.prompted_actions(StepType.TRUSTED_ASSESSMENT, no) == []


# --- SO05 / SO08 / SO09 ------------------------------------------------------------------------


def test_so09_finish_returns_next_actions_to_send() -> None:
    step = _ready_to_finish()
    assert domain.finish(step, SENIOR_OFFICER) == step.next_actions


def test_so05_no_finish_without_a_next_action() -> None:
    step = _ready_to_finish()
    step.next_actions = []
    with pytest.raises(RuleViolation) as exc:
        domain.finish(step, SENIOR_OFFICER)
    assert _rule(exc) == "SO05"


def test_so08_no_finish_with_incomplete_mandatory_field() -> None:
    step = _ready_to_finish()
    step.answers["support_plan"] = "  "
    with pytest.raises(RuleViolation) as exc:
        domain.finish(step, SENIOR_OFFICER)
    assert _rule(exc) == "SO08"
    assert "Support planning/support_plan" in exc.value.reason


def test_so08_no_finish_with_outstanding_request() -> None:
    step = _ready_to_finish()
    step.requests.append(Request(uuid.uuid4(), RequestState.OUTSTANDING, "pos-ta"))
    with pytest.raises(RuleViolation) as exc:
        domain.finish(step, SENIOR_OFFICER)
    assert _rule(exc) == "SO08"


def test_so01_no_finish_before_the_mandatory_request_is_completed() -> None:
    step = _ready_to_finish()
    step.requests = [Request(uuid.uuid4(), RequestState.RETURNED, "pos-ta")]
    with pytest.raises(RuleViolation) as exc:
        domain.finish(step, SENIOR_OFFICER)
    assert _rule(exc) == "SO01"


def test_so09_only_the_signoff_officer_finishes() -> None:
    for worker in (TRUSTED_ASSESSOR, NORTH_SENIOR_OFFICER, None):
        with pytest.raises(RuleViolation) as exc:
            domain.finish(_ready_to_finish(), worker)
        assert _rule(exc) == "SO09"


def test_so09_finished_step_takes_no_further_input() -> None:
    step = _ready_to_finish()
    step.finished = True
    request_id = step.requests[0].request_id
    attempts = [
        lambda: domain.finish(step, SENIOR_OFFICER),
        lambda: domain.save(step, SENIOR_OFFICER, {"risks": "none"}),
        lambda: domain.add_next_actions(step, SENIOR_OFFICER, [_transfer()], [uuid.uuid4()], KNOWN),
        lambda: domain.send_request(step, TRUSTED_ASSESSOR),
        lambda: domain.complete_request(step, SENIOR_OFFICER, request_id),
        lambda: domain.return_request(step, SENIOR_OFFICER, request_id, "why"),
    ]
    for attempt in attempts:
        with pytest.raises(RuleViolation) as exc:
            attempt()
        assert _rule(exc) == "SO09"


def test_so09_save_merges_answers_and_keeps_the_step_open() -> None:
    step = _step(answers={"what_matters": "Home"})
    answers = domain.save(step, TRUSTED_ASSESSOR, {"risks": "Falls"})
    assert answers == {"what_matters": "Home", "risks": "Falls"}
    assert not step.finished
    missing = domain.incomplete_mandatory(StepType.TRUSTED_ASSESSMENT, answers)
    assert missing == [
        "Assessment/presenting_needs",
        "Support planning/support_plan",
        "Support planning/progressing_to_support_officer",
    ]


@pytest.mark.parametrize(
    "answers", [{"no_such_field": "x"}, {"progressing_to_support_officer": "Maybe"}]
)
def test_so09_save_refuses_unknown_field_or_choice(answers: dict[str, str]) -> None:
    with pytest.raises(RuleViolation) as exc:
        domain.save(_step(), TRUSTED_ASSESSOR, answers)
    assert _rule(exc) == "SO09"


def test_so09_save_refused_to_someone_else() -> None:
    with pytest.raises(RuleViolation) as exc:
        domain.save(_step(), SUPPORT_OFFICER, {"risks": "x"})
    assert _rule(exc) == "SO09"


# --- SO07 --------------------------------------------------------------------------------------


def test_so07_complete_and_return_by_signoff_officer_only() -> None:
    request = Request(uuid.uuid4(), RequestState.OUTSTANDING, "pos-ta")
    step = _step(requests=[request])
    assert domain.complete_request(step, SENIOR_OFFICER, request.request_id) == request
    assert domain.return_request(step, SENIOR_OFFICER, request.request_id, "More detail") == (
        "pos-ta"
    )
    for worker in (TRUSTED_ASSESSOR, NORTH_SENIOR_OFFICER, None):
        with pytest.raises(RuleViolation) as exc:
            domain.complete_request(step, worker, request.request_id)
        assert _rule(exc) == "SO07"


def test_so07_return_needs_a_note() -> None:
    request = Request(uuid.uuid4(), RequestState.OUTSTANDING, "pos-ta")
    with pytest.raises(RuleViolation) as exc:
        domain.return_request(_step(requests=[request]), SENIOR_OFFICER, request.request_id, " ")
    assert _rule(exc) == "SO07"
    assert "note" in exc.value.reason


def test_so07_only_an_outstanding_request_can_be_completed_or_returned() -> None:
    done = Request(uuid.uuid4(), RequestState.COMPLETED, "pos-ta")
    step = _step(requests=[done])
    for request_id in (done.request_id, uuid.uuid4()):
        with pytest.raises(RuleViolation) as exc:
            domain.complete_request(step, SENIOR_OFFICER, request_id)
        assert _rule(exc) == "SO07"


def test_so03_summary_sections_end_with_next_actions() -> None:
    sections = domain.sections_view(StepType.SUPPORT_PLAN_DELIVERY, {"outcomes": "Met"})
    assert [s["name"] for s in sections] == ["Support delivery", "Review", "Next actions"]
    fields = sections[0]["fields"]
    assert isinstance(fields, list)
    assert fields[1] == {
        "name": "outcomes",
        "label": "Outcomes achieved",
        "mandatory": True,
        "choices": [],
        "answer": "Met",
        "filled": True,
    }


# --- AL13: triage and Case Monitoring are saved and finished like any other step ---------------


def _triage(**kwargs: object) -> Step:
    return _step(StepType.TRIAGE, owner_id=HUB_WORKER.position_id, **kwargs)


def _trusted_assessment_action() -> NextActionInput:
    return NextActionInput(
        action_type=TRUSTED_ASSESSMENT_ACTION,
        assignee_kind="team",
        assignee_id="Wellbeing Service North Team",
        note="Assessment please",
    )


def test_al13_triage_saved_prompts_trusted_assessment_and_finished_by_its_hub_worker() -> None:
    step = _triage()
    step.answers = domain.save(step, HUB_WORKER, COMPLETE_TRIAGE_ANSWERS)
    assert domain.incomplete_mandatory(StepType.TRIAGE, step.answers) == []
    assert domain.prompted_actions(StepType.TRIAGE, step.answers) == [
        TRUSTED_ASSESSMENT_ACTION,
        CASE_MONITORING_ACTION,
    ]
    step.next_actions = domain.add_next_actions(
        step, HUB_WORKER, [_trusted_assessment_action()], [uuid.uuid4()], KNOWN
    )
    # No mandatory request on triage (SO01 is for the two steps under sign-off).
    assert domain.finish(step, HUB_WORKER) == step.next_actions


def test_al13_triage_not_worked_or_finished_by_anyone_else() -> None:
    step = _triage(answers=dict(COMPLETE_TRIAGE_ANSWERS))
    step.next_actions = domain.add_next_actions(
        step, HUB_WORKER, [_trusted_assessment_action()], [uuid.uuid4()], KNOWN
    )
    for worker in (OTHER_HUB_WORKER, SENIOR_OFFICER, TRUSTED_ASSESSOR, None):
        with pytest.raises(RuleViolation) as exc:
            domain.finish(step, worker)
        assert _rule(exc) == "AL13"
        with pytest.raises(RuleViolation) as exc:
            domain.save(step, worker, {"triage_notes": "x"})
        assert _rule(exc) == "AL13"
        with pytest.raises(RuleViolation) as exc:
            domain.add_next_actions(
                step, worker, [_trusted_assessment_action()], [uuid.uuid4()], KNOWN
            )
        assert _rule(exc) == "AL13"
    # Held by the team (not yet allocated to a Hub Team worker): nobody works it yet.
    with pytest.raises(RuleViolation) as exc:
        domain.save(
            _step(StepType.TRIAGE, owner_kind="team", owner_id="Wellbeing Service Hub Team"),
            HUB_WORKER,
            {"triage_notes": "x"},
        )
    assert _rule(exc) == "AL13"


def test_al13_triage_finish_needs_next_action_and_mandatory_fields() -> None:
    step = _triage(answers=dict(COMPLETE_TRIAGE_ANSWERS))
    with pytest.raises(RuleViolation) as exc:
        domain.finish(step, HUB_WORKER)
    assert _rule(exc) == "SO05"
    step.next_actions = domain.add_next_actions(
        step, HUB_WORKER, [_trusted_assessment_action()], [uuid.uuid4()], KNOWN
    )
    step.answers["risk_level"] = ""
    with pytest.raises(RuleViolation) as exc:
        domain.finish(step, HUB_WORKER)
    assert _rule(exc) == "SO08"


def test_al13_case_monitoring_finished_by_whoever_holds_it() -> None:
    answers = {"contact_made": "Phone call", "wellbeing_update": "Well", "case_can_close": "Yes"}
    for holder in (HUB_WORKER, TRUSTED_ASSESSOR, SUPPORT_OFFICER):
        step = _step(StepType.CASE_MONITORING, owner_id=holder.position_id)
        step.answers = domain.save(step, holder, answers)
        assert domain.prompted_actions(StepType.CASE_MONITORING, step.answers) == [
            CLOSE_CASE_ACTION
        ]
        close = NextActionInput(
            action_type=CLOSE_CASE_ACTION, assignee_kind="worker", assignee_id=holder.position_id
        )
        step.next_actions = domain.add_next_actions(step, holder, [close], [uuid.uuid4()], KNOWN)
        assert domain.finish(step, holder) == step.next_actions
    in_inbox = _step(
        StepType.CASE_MONITORING,
        owner_kind="inbox",
        owner_id="WB Case Monitoring North \u2013 Inbox (Unassigned)",
    )
    with pytest.raises(RuleViolation) as exc:  # resumed into one's own work first (allocation)
        domain.save(in_inbox, SUPPORT_OFFICER, answers)
    assert _rule(exc) == "AL13"


# --- SO10 --------------------------------------------------------------------------------------


def test_so10_next_action_changed_or_removed_until_finished() -> None:
    step = _ready_to_finish()
    action_id = step.next_actions[0].action_id
    changed = domain.change_next_action(
        step, SENIOR_OFFICER, action_id, _transfer(note="Start next week"), KNOWN
    )
    assert (changed.action_id, changed.note) == (action_id, "Start next week")
    assert domain.remove_next_action(step, SENIOR_OFFICER, action_id).action_id == action_id
    with pytest.raises(RuleViolation) as exc:
        domain.remove_next_action(step, SENIOR_OFFICER, uuid.uuid4())
    assert _rule(exc) == "SO10"
    step.finished = True
    for attempt in (
        lambda: domain.change_next_action(step, SENIOR_OFFICER, action_id, _transfer(), KNOWN),
        lambda: domain.remove_next_action(step, SENIOR_OFFICER, action_id),
    ):
        with pytest.raises(RuleViolation) as exc:
            attempt()
        assert _rule(exc) == "SO09"


def test_so10_change_and_remove_only_by_those_who_add() -> None:
    step = _ready_to_finish()
    action_id = step.next_actions[0].action_id
    for worker in (NORTH_SENIOR_OFFICER, SUPPORT_OFFICER, None):
        with pytest.raises(RuleViolation) as exc:
            domain.remove_next_action(step, worker, action_id)
        assert _rule(exc) == "SO10"
        with pytest.raises(RuleViolation) as exc:
            domain.change_next_action(step, worker, action_id, _transfer(), KNOWN)
        assert _rule(exc) == "SO10"


@pytest.mark.parametrize(
    ("kind", "assignee"),
    [
        ("worker", "pos-ta"),  # a Trusted Assessor, not a Generic Support Officer
        ("worker", "pos-hub"),
        ("team", "Wellbeing Service North Team"),
    ],
)
def test_so10_transfer_must_go_to_a_generic_support_officer(kind: str, assignee: str) -> None:
    action = _transfer().model_copy(update={"assignee_kind": kind, "assignee_id": assignee})
    with pytest.raises(RuleViolation) as exc:
        domain.add_next_actions(_step(), SENIOR_OFFICER, [action], [uuid.uuid4()], KNOWN)
    assert _rule(exc) == "SO10"
    step = _ready_to_finish()
    with pytest.raises(RuleViolation) as exc:
        domain.change_next_action(
            step, SENIOR_OFFICER, step.next_actions[0].action_id, action, KNOWN
        )
    assert _rule(exc) == "SO10"


# --- AL15 --------------------------------------------------------------------------------------


def test_al15_document_has_every_section_with_questions_and_answers() -> None:
    sections = domain.document(StepType.TRUSTED_ASSESSMENT, COMPLETE_TA_ANSWERS)
    assert [s.name for s in sections] == ["Assessment", "Support planning"]
    assessment = {a.name: (a.label, a.answer) for a in sections[0].answers}
    assert assessment["what_matters"] == ("What matters to the person", "Staying at home")
    assert assessment["risks"] == ("Risks identified", None)  # unanswered, still shown
