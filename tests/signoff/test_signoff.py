"""Sign-off rules over the real broker and the real PostgreSQL. Steps are announced on
allocation.events as allocation would; the directory is seeded through access.events."""

from __future__ import annotations

import uuid

from contracts.allocation import StepType
from contracts.signoff import (
    CASE_MONITORING_ACTION,
    MANAGEMENT_TEAM,
    REQUEST_NAME,
    TRANSFER_TO_SUPPORT_OFFICER,
    AddNextActions,
    CompleteRequest,
    FinishStep,
    NextActionInput,
    NextActionsAdded,
    RequestCompleted,
    RequestReturned,
    RequestSent,
    ReturnRequest,
    SaveStep,
    SendRequest,
    StepFinished,
    StepSaved,
)
from tests.signoff.conftest import (
    NORTH_SENIOR_OFFICER,
    NORTH_TEAM,
    SENIOR_OFFICER,
    SUPPORT_OFFICER,
    TRUSTED_ASSESSOR,
    Seat,
    SignoffDriver,
    StepRef,
)


def _transfer(note: str = "Please start the support plan") -> NextActionInput:
    return NextActionInput(
        action_type=TRANSFER_TO_SUPPORT_OFFICER,
        assignee_kind="worker",
        assignee_id=SUPPORT_OFFICER.position_id,
        note=note,
        priority="high",
    )


def _add(ref: StepRef, *actions: NextActionInput) -> AddNextActions:
    return AddNextActions(step_id=ref.step_id, person_id=ref.person_id, actions=list(actions))


def _complete(ref: StepRef) -> CompleteRequest:
    assert ref.request_id is not None
    return CompleteRequest(request_id=ref.request_id, step_id=ref.step_id, person_id=ref.person_id)


def _return(ref: StepRef, note: str) -> ReturnRequest:
    assert ref.request_id is not None
    return ReturnRequest(
        request_id=ref.request_id, step_id=ref.step_id, person_id=ref.person_id, note=note
    )


def _finish(ref: StepRef) -> FinishStep:
    return FinishStep(step_id=ref.step_id, person_id=ref.person_id)


async def _incoming_titles(driver: SignoffDriver, step_id: uuid.UUID) -> list[str]:
    response = await driver.service.get(
        SENIOR_OFFICER.user_id, f"/teams/{MANAGEMENT_TEAM}/incoming-requests"
    )
    assert response.status_code == 200
    return [
        r["title"] for r in response.json()["incoming_requests"] if r["step_id"] == str(step_id)
    ]


# --- SO01 / SO02 -------------------------------------------------------------------------------


async def test_so01_so02_trusted_assessor_request_lands_in_management_team_incoming_requests(
    driver: SignoffDriver,
) -> None:
    ref = await driver.step(StepType.TRUSTED_ASSESSMENT)
    sent = await driver.ok(
        SendRequest(step_id=ref.step_id, person_id=ref.person_id), TRUSTED_ASSESSOR, RequestSent
    )
    expected_title = f"{REQUEST_NAME} - {StepType.TRUSTED_ASSESSMENT.value}"
    assert sent.title == expected_title
    assert sent.team == MANAGEMENT_TEAM
    assert sent.sent_by_position_id == TRUSTED_ASSESSOR.position_id
    assert await _incoming_titles(driver, ref.step_id) == [expected_title]


async def test_so01_support_officer_sends_from_support_action_plan_delivery(
    driver: SignoffDriver,
) -> None:
    ref = await driver.step(StepType.SUPPORT_PLAN_DELIVERY, owner=SUPPORT_OFFICER)
    sent = await driver.ok(
        SendRequest(step_id=ref.step_id, person_id=ref.person_id), SUPPORT_OFFICER, RequestSent
    )
    assert sent.title == f"{REQUEST_NAME} - {StepType.SUPPORT_PLAN_DELIVERY.value}"
    assert await _incoming_titles(driver, ref.step_id) == [sent.title]


async def test_so01_request_refused_from_the_wrong_role_and_nothing_is_sent(
    driver: SignoffDriver,
) -> None:
    ref = await driver.step(StepType.TRUSTED_ASSESSMENT, owner=None)  # held by the team
    send = SendRequest(step_id=ref.step_id, person_id=ref.person_id)
    for seat in (SUPPORT_OFFICER, SENIOR_OFFICER):
        rejected = await driver.refused(send, seat, "SO01")
        assert "Trusted Assessor" in rejected.reason
    assert await _incoming_titles(driver, ref.step_id) == []
    # A second request while one is outstanding is refused as well.
    await driver.ok(send, TRUSTED_ASSESSOR, RequestSent)
    await driver.refused(send, TRUSTED_ASSESSOR, "SO01")
    assert len(await _incoming_titles(driver, ref.step_id)) == 1


async def test_command_on_a_step_signoff_does_not_know_is_refused(driver: SignoffDriver) -> None:
    await driver.refused(
        SendRequest(step_id=uuid.uuid4(), person_id="P-nobody"), TRUSTED_ASSESSOR, "unknown-step"
    )


# --- SO03 / SO04 / SO09 (save) -----------------------------------------------------------------


async def test_so09_save_keeps_the_step_open_and_so03_summary_shows_sections(
    driver: SignoffDriver,
) -> None:
    ref = await driver.step()
    saved = await driver.ok(
        SaveStep(
            step_id=ref.step_id,
            person_id=ref.person_id,
            answers={"what_matters": "Home", "progressing_to_support_officer": "Yes"},
        ),
        TRUSTED_ASSESSOR,
        StepSaved,
    )
    assert saved.incomplete_mandatory == [
        "Assessment/presenting_needs",
        "Support planning/support_plan",
    ]
    assert saved.prompted_actions == [TRANSFER_TO_SUPPORT_OFFICER]
    summary = await driver.summary(ref)
    assert summary["finished"] is False
    sections = summary["sections"]
    assert [s["name"] for s in sections] == ["Assessment", "Support planning", "Next actions"]
    answers = {f["name"]: f["answer"] for s in sections for f in s["fields"]}
    assert answers["what_matters"] == "Home"
    assert answers["presenting_needs"] is None
    assert summary["prompted_actions"] == [TRANSFER_TO_SUPPORT_OFFICER]
    # A field the form does not have is refused.
    await driver.refused(
        SaveStep(step_id=ref.step_id, person_id=ref.person_id, answers={"shoe_size": "9"}),
        TRUSTED_ASSESSOR,
        "SO09",
    )


async def test_so04_several_next_actions_at_once_with_assignee_note_and_priority(
    driver: SignoffDriver,
) -> None:
    ref = await driver.requested()
    monitor = NextActionInput(
        action_type=CASE_MONITORING_ACTION,
        assignee_kind="team",
        assignee_id=NORTH_TEAM,
        note="Monitor while support starts",
    )
    added = await driver.ok(_add(ref, _transfer(), monitor), SENIOR_OFFICER, NextActionsAdded)
    assert [(a.action_type, a.assignee_id, a.priority) for a in added.next_actions] == [
        (TRANSFER_TO_SUPPORT_OFFICER, SUPPORT_OFFICER.position_id, "high"),
        (CASE_MONITORING_ACTION, NORTH_TEAM, "normal"),
    ]
    summary = await driver.summary(ref)
    assert [a["note"] for a in summary["next_actions"]] == [
        "Please start the support plan",
        "Monitor while support starts",
    ]


async def test_so04_note_expected_when_passing_to_another_worker(driver: SignoffDriver) -> None:
    ref = await driver.requested()
    rejected = await driver.refused(_add(ref, _transfer(note="")), SENIOR_OFFICER, "SO04")
    assert "note" in rejected.reason
    summary = await driver.summary(ref)
    assert summary["next_actions"] == []


async def test_so03_signoff_only_by_a_senior_officer_of_the_management_team(
    driver: SignoffDriver,
) -> None:
    """A Senior Officer of another team, or the step's own worker, cannot sign off."""
    ref = await driver.requested()
    await driver.refused(_add(ref, _transfer()), NORTH_SENIOR_OFFICER, "SO04")
    await driver.refused(_complete(ref), NORTH_SENIOR_OFFICER, "SO07")
    await driver.refused(_complete(ref), TRUSTED_ASSESSOR, "SO07")
    await driver.refused(_return(ref, "no"), NORTH_SENIOR_OFFICER, "SO07")
    # Claiming a Management Team seat one does not hold does not help.
    impostor = Seat(TRUSTED_ASSESSOR.user_id, SENIOR_OFFICER.position_id)
    await driver.refused(_complete(ref), impostor, "SO07")
    await driver.ok(_add(ref, _transfer()), SENIOR_OFFICER, NextActionsAdded)
    await driver.ok(_complete(ref), SENIOR_OFFICER, RequestCompleted)
    await driver.refused(_finish(ref), NORTH_SENIOR_OFFICER, "SO09")
    await driver.refused(_finish(ref), TRUSTED_ASSESSOR, "SO09")
    summary = await driver.summary(ref)
    assert summary["finished"] is False


# --- SO05 / SO08 -------------------------------------------------------------------------------


async def test_so05_step_cannot_be_finished_without_a_next_action(driver: SignoffDriver) -> None:
    ref = await driver.requested()
    await driver.ok(_complete(ref), SENIOR_OFFICER, RequestCompleted)
    await driver.refused(_finish(ref), SENIOR_OFFICER, "SO05")
    assert (await driver.summary(ref))["finished"] is False


async def test_so08_step_cannot_be_finished_while_the_request_is_outstanding(
    driver: SignoffDriver,
) -> None:
    ref = await driver.requested()
    await driver.ok(_add(ref, _transfer()), SENIOR_OFFICER, NextActionsAdded)
    rejected = await driver.refused(_finish(ref), SENIOR_OFFICER, "SO08")
    assert "outstanding" in rejected.reason


async def test_so08_step_cannot_be_finished_with_an_incomplete_mandatory_field(
    driver: SignoffDriver,
) -> None:
    ref = await driver.requested()
    await driver.ok(
        SaveStep(step_id=ref.step_id, person_id=ref.person_id, answers={"support_plan": ""}),
        SENIOR_OFFICER,
        StepSaved,
    )
    await driver.ok(_add(ref, _transfer()), SENIOR_OFFICER, NextActionsAdded)
    await driver.ok(_complete(ref), SENIOR_OFFICER, RequestCompleted)
    rejected = await driver.refused(_finish(ref), SENIOR_OFFICER, "SO08")
    assert "Support planning/support_plan" in rejected.reason
    # Filling it in lets the step finish.
    await driver.ok(
        SaveStep(step_id=ref.step_id, person_id=ref.person_id, answers={"support_plan": "Visits"}),
        SENIOR_OFFICER,
        StepSaved,
    )
    await driver.ok(_finish(ref), SENIOR_OFFICER, StepFinished)


# --- SO07 --------------------------------------------------------------------------------------


async def test_so07_return_needs_a_note(driver: SignoffDriver) -> None:
    ref = await driver.requested()
    await driver.refused(_return(ref, "   "), SENIOR_OFFICER, "SO07")
    assert len(await _incoming_titles(driver, ref.step_id)) == 1


async def test_so07_returned_request_goes_back_to_the_worker_and_the_step_stays_open(
    driver: SignoffDriver,
) -> None:
    ref = await driver.requested()
    returned = await driver.ok(
        _return(ref, "Please add the risk assessment"), SENIOR_OFFICER, RequestReturned
    )
    assert returned.return_to_position_id == TRUSTED_ASSESSOR.position_id
    assert returned.note == "Please add the risk assessment"
    assert await _incoming_titles(driver, ref.step_id) == []
    summary = await driver.summary(ref)
    assert summary["finished"] is False
    assert summary["completed_by_position_id"] == TRUSTED_ASSESSOR.position_id
    assert [(r["state"], r["note"]) for r in summary["requests"]] == [
        ("returned", "Please add the risk assessment")
    ]
    # Not finished: the worker can still save and send the request again.
    await driver.ok(
        SaveStep(step_id=ref.step_id, person_id=ref.person_id, answers={"risks": "Falls"}),
        TRUSTED_ASSESSOR,
        StepSaved,
    )
    await driver.ok(
        SendRequest(step_id=ref.step_id, person_id=ref.person_id), TRUSTED_ASSESSOR, RequestSent
    )
    # A returned request can be neither completed nor returned again.
    await driver.refused(_complete(ref), SENIOR_OFFICER, "SO07")


# --- SO09 / SO06 (sign-off's half) -------------------------------------------------------------


async def _finished(driver: SignoffDriver) -> tuple[StepRef, StepFinished]:
    ref = await driver.requested()
    await driver.ok(_add(ref, _transfer()), SENIOR_OFFICER, NextActionsAdded)
    await driver.ok(_complete(ref), SENIOR_OFFICER, RequestCompleted)
    finished = await driver.ok(_finish(ref), SENIOR_OFFICER, StepFinished)
    return ref, finished


async def test_so09_so06_finish_locks_the_step_and_sends_its_next_actions(
    driver: SignoffDriver,
) -> None:
    ref, finished = await _finished(driver)
    assert finished.step_type == StepType.TRUSTED_ASSESSMENT.value
    assert finished.finished_by_position_id == SENIOR_OFFICER.position_id
    (action,) = finished.next_actions
    assert action.action_type == TRANSFER_TO_SUPPORT_OFFICER
    assert (action.assignee_kind, action.assignee_id) == ("worker", SUPPORT_OFFICER.position_id)
    summary = await driver.summary(ref)
    assert summary["finished"] is True
    assert summary["finished_by_position_id"] == SENIOR_OFFICER.position_id


async def test_so09_finished_step_takes_no_further_input(driver: SignoffDriver) -> None:
    ref, _ = await _finished(driver)
    attempts = [
        (
            SaveStep(step_id=ref.step_id, person_id=ref.person_id, answers={"risks": "x"}),
            SENIOR_OFFICER,
        ),
        (_add(ref, _transfer()), SENIOR_OFFICER),
        (SendRequest(step_id=ref.step_id, person_id=ref.person_id), TRUSTED_ASSESSOR),
        (_complete(ref), SENIOR_OFFICER),
    ]
    for command, seat in attempts:
        await driver.refused(command, seat, "SO09")
    summary = await driver.summary(ref)
    assert len(summary["next_actions"]) == 1


async def test_so09_duplicate_finish_emits_step_finished_once(driver: SignoffDriver) -> None:
    ref = await driver.requested()
    await driver.ok(_add(ref, _transfer()), SENIOR_OFFICER, NextActionsAdded)
    await driver.ok(_complete(ref), SENIOR_OFFICER, RequestCompleted)
    finish = _finish(ref)
    envelope = driver.commands.envelope(finish, SENIOR_OFFICER.actor)
    # The same message delivered twice (inbox), then a second finish command (state check).
    await driver.commands.send(finish, SENIOR_OFFICER.actor, envelope=envelope)
    await driver.commands.send(finish, SENIOR_OFFICER.actor, envelope=envelope)
    await driver.refused(_finish(ref), SENIOR_OFFICER, "SO09")
    # A duplicate announces its outcome again (the same event, same message id): one event.
    finishes = {
        e.message_id: e
        for e in driver.log.envelopes()
        if e.type == StepFinished.TYPE and e.payload["step_id"] == str(ref.step_id)
    }
    assert len(finishes) == 1
    assert next(iter(finishes.values())).causation_id == envelope.message_id
    assert len({e.message_id for e in driver.log.caused_by(envelope.message_id)}) == 1
