"""Sign-off rules as pure functions: no broker, no database."""

from __future__ import annotations

import uuid

import pytest

from contracts.access import Role
from contracts.allocation import StepType
from contracts.signoff import (
    CASE_MONITORING_ACTION,
    MANAGEMENT_TEAM,
    REQUEST_NAME,
    TRANSFER_TO_SUPPORT_OFFICER,
    NextActionInput,
)
from services.shared.rules import RuleViolation
from services.signoff import domain
from services.signoff.domain import Request, RequestState, Step, Worker

SENIOR_OFFICER = Worker("pos-so", Role.SENIOR_OFFICER.value, MANAGEMENT_TEAM)
NORTH_SENIOR_OFFICER = Worker("pos-so-n", Role.SENIOR_OFFICER.value, "Wellbeing Service North Team")
TRUSTED_ASSESSOR = Worker("pos-ta", Role.TRUSTED_ASSESSOR.value, "Wellbeing Service North Team")
OTHER_ASSESSOR = Worker("pos-ta2", Role.TRUSTED_ASSESSOR.value, "Wellbeing Service North Team")
SUPPORT_OFFICER = Worker(
    "pos-gso", Role.GENERIC_SUPPORT_OFFICER.value, "Wellbeing Service North Team"
)
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
        step, SENIOR_OFFICER, [_transfer()], [uuid.uuid4()], {SUPPORT_OFFICER.position_id}
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
    step_type: StepType, owner_id: str, worker: Worker | None
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
    assert domain.goes_through_signoff(StepType.TRUSTED_ASSESSMENT.value)
    assert domain.goes_through_signoff(StepType.SUPPORT_PLAN_DELIVERY.value)
    assert not domain.goes_through_signoff(StepType.TRIAGE.value)
    assert not domain.goes_through_signoff(StepType.CASE_MONITORING.value)


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
    added = domain.add_next_actions(
        step, SENIOR_OFFICER, [_transfer(), monitor], ids, {SUPPORT_OFFICER.position_id}
    )
    assert [a.action_id for a in added] == ids
    assert [(a.action_type, a.assignee_kind, a.priority) for a in added] == [
        (TRANSFER_TO_SUPPORT_OFFICER, "worker", "high"),
        (CASE_MONITORING_ACTION, "team", "normal"),
    ]


def test_so04_note_expected_when_passing_to_another_worker_or_team_not_to_self() -> None:
    step = _step()
    with pytest.raises(RuleViolation) as exc:
        domain.add_next_actions(
            step, SENIOR_OFFICER, [_transfer(note=" ")], [uuid.uuid4()], {"pos-gso"}
        )
    assert _rule(exc) == "SO04"
    to_self = NextActionInput(
        action_type=CASE_MONITORING_ACTION, assignee_kind="worker", assignee_id="pos-ta"
    )
    assert domain.add_next_actions(step, TRUSTED_ASSESSOR, [to_self], [uuid.uuid4()], {"pos-ta"})


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
        domain.add_next_actions(_step(), SENIOR_OFFICER, [action], [uuid.uuid4()], {"pos-gso"})
    assert _rule(exc) == "SO04"


def test_so03_next_actions_by_the_steps_worker_or_the_signoff_officer_only() -> None:
    for worker in (NORTH_SENIOR_OFFICER, SUPPORT_OFFICER, None):
        with pytest.raises(RuleViolation) as exc:
            domain.add_next_actions(_step(), worker, [_transfer()], [uuid.uuid4()], {"pos-gso"})
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
        lambda: domain.add_next_actions(
            step, SENIOR_OFFICER, [_transfer()], [uuid.uuid4()], {"pos-gso"}
        ),
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
