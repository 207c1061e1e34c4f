"""Steps that finish (AL13, AL15) and next actions that change (SO10), across the allocation and
sign-off services over Kafka: both run in-process and talk only through their topics. Each rule
comes with the attacks of a worker without the right position."""

from __future__ import annotations

import uuid
from typing import Any

from contracts import Envelope
from contracts.allocation import (
    AssignWork,
    CreateStep,
    ReceiveReferral,
    RecordWorkerRelationship,
    ResumeStep,
    StartStep,
    StepType,
    WorkerRelationshipRecorded,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemFinished,
    WorkItemResumed,
    WorkItemStarted,
)
from contracts.signoff import (
    CASE_MONITORING_ACTION,
    CLOSE_CASE_ACTION,
    TRANSFER_TO_SUPPORT_OFFICER,
    TRUSTED_ASSESSMENT_ACTION,
    AddNextActions,
    ChangeNextAction,
    CompleteRequest,
    FinishStep,
    NextActionChanged,
    NextActionInput,
    NextActionRemoved,
    NextActionsAdded,
    RemoveNextAction,
    RequestCompleted,
    SaveStep,
    SendRequest,
    StepFinished,
    StepSaved,
)
from tests.conftest import RunningService
from tests.signoff.conftest import (
    NORTH_SENIOR_OFFICER,
    NORTH_TEAM,
    SENIOR_OFFICER,
    SUPPORT_OFFICER,
    TRUSTED_ASSESSOR,
    Seat,
    SignoffDriver,
    StepRef,
    wait_until,
)

HUB_TEAM = "Wellbeing Service Hub Team"
HUB_SENIOR_OFFICER = Seat("so-hub", "pos-so-hub")
HUB_WORKER = Seat("hub-1", "pos-hub-1")
OTHER_HUB_WORKER = Seat("hub-2", "pos-hub-2")
TRIAGE_ANSWERS = {
    "reason_for_referral": "Isolated since a fall",
    "risks_identified": "Falls at night",
    "risk_level": "Medium",
    "trusted_assessment_needed": "Yes",
    "monitoring_needed": "Yes",
}
MONITORING_ANSWERS = {
    "contact_made": "Phone call on Monday",
    "wellbeing_update": "Managing well with the support",
    "case_can_close": "Yes",
}


def _caused(driver: SignoffDriver, cause: Envelope, event_type: str) -> list[Envelope]:
    return [e for e in driver.log.caused_by(cause.message_id) if e.type == event_type]


async def _json(service: RunningService, reader: Seat, path: str) -> Any:
    response = await service.get(reader.user_id, path)
    assert response.status_code == 200, response.text
    return response.json()


async def _signoff_sees_holder(driver: SignoffDriver, step_id: uuid.UUID, holder: Seat) -> None:
    """Sign-off has learnt (from allocation.events) that `holder` holds the step: its summary
    is theirs to read (TR05 with AL13)."""

    async def theirs() -> bool:
        response = await driver.service.get(holder.user_id, f"/steps/{step_id}")
        return response.status_code == 200 and response.json()["owner_id"] == holder.position_id

    await wait_until(theirs, f"sign-off sees {holder.position_id} holding {step_id}")


async def _triage_with_the_hub_worker(driver: SignoffDriver, area: str = "North") -> StepRef:
    """A referral's triage step, allocated by the Hub Team's Senior Officer to a Hub Team worker
    who starts it (AL01, AL06, AL03)."""
    person = f"P-{uuid.uuid4().hex[:8]}"
    created = await driver.ok(
        ReceiveReferral(person_id=person, person_name="Grace Hopper", area=area),
        HUB_SENIOR_OFFICER,
        WorkItemCreated,
    )
    ref = StepRef(created.work_item_id, person)
    await driver.log.wait_for(lambda: driver.tracked(ref.step_id))
    await driver.ok(
        AssignWork(person_id=person, work_item_id=ref.step_id, to_position_id="pos-hub-1"),
        HUB_SENIOR_OFFICER,
        WorkItemAssigned,
    )
    await driver.ok(
        StartStep(person_id=person, work_item_id=ref.step_id), HUB_WORKER, WorkItemStarted
    )
    await _signoff_sees_holder(driver, ref.step_id, HUB_WORKER)
    return ref


def _triage_actions() -> list[NextActionInput]:
    return [
        NextActionInput(
            action_type=TRUSTED_ASSESSMENT_ACTION,
            assignee_kind="team",
            assignee_id=NORTH_TEAM,
            note="Please assess and plan support",
        ),
        NextActionInput(
            action_type=CASE_MONITORING_ACTION,
            assignee_kind="team",
            assignee_id=HUB_TEAM,
            note="Monitor until the assessment starts",
        ),
    ]


# --- AL13 / AL15 --------------------------------------------------------------------------------


async def test_al13_al15_triage_finished_by_its_hub_worker_sends_the_trusted_assessment(
    allocation: RunningService, driver: SignoffDriver
) -> None:
    ref = await _triage_with_the_hub_worker(driver, area="North")
    save = SaveStep(step_id=ref.step_id, person_id=ref.person_id, answers=TRIAGE_ANSWERS)
    # Attacks: another Hub Team worker, the Management Team's Senior Officer (no sign-off here).
    await driver.refused(save, OTHER_HUB_WORKER, "AL13")
    await driver.refused(save, SENIOR_OFFICER, "AL13")
    saved = await driver.ok(save, HUB_WORKER, StepSaved)
    assert saved.incomplete_mandatory == []
    assert saved.prompted_actions == [TRUSTED_ASSESSMENT_ACTION, CASE_MONITORING_ACTION]
    await driver.ok(
        AddNextActions(step_id=ref.step_id, person_id=ref.person_id, actions=_triage_actions()),
        HUB_WORKER,
        NextActionsAdded,
    )
    finish = FinishStep(step_id=ref.step_id, person_id=ref.person_id)
    await driver.refused(finish, OTHER_HUB_WORKER, "AL13")
    await driver.refused(finish, SENIOR_OFFICER, "AL13")
    # Triage has no mandatory request to send (SO01 is for the two steps under sign-off).
    await driver.refused(
        SendRequest(step_id=ref.step_id, person_id=ref.person_id), HUB_WORKER, "SO01"
    )
    sent = await driver.commands.send(finish, HUB_WORKER.actor)
    (finished_envelope,) = await driver.log.outcome(sent.message_id)
    finished = StepFinished.model_validate(finished_envelope.payload)
    assert [s.name for s in finished.sections] == ["Initial risk assessment", "Triage"]
    await driver.refused(finish, HUB_WORKER, "SO09")  # locked

    # Allocation: triage is locked; the Trusted Assessment is the North Team's incoming work
    # (AL02 by the person's area) and Case Monitoring the Hub Team's (AL03).
    await driver.log.wait_for(lambda: _caused(driver, finished_envelope, WorkItemFinished.TYPE))

    def both_created() -> list[Envelope]:
        found = _caused(driver, finished_envelope, WorkItemCreated.TYPE)
        return found if len(found) == 2 else []

    created = {
        new.step_type: new
        for new in (
            WorkItemCreated.model_validate(e.payload)
            for e in await driver.log.wait_for(both_created)
        )
    }
    assessment = created[StepType.TRUSTED_ASSESSMENT]
    assert (assessment.owner_kind, assessment.owner_id) == ("team", NORTH_TEAM)
    assert created[StepType.CASE_MONITORING].owner_id == HUB_TEAM
    north = await _json(allocation, NORTH_SENIOR_OFFICER, f"/teams/{NORTH_TEAM}/work")
    assert str(assessment.work_item_id) in {i["work_item_id"] for i in north["incoming_work"]}
    await driver.log.wait_for(lambda: driver.tracked(assessment.work_item_id))  # its form

    # AL15: the person's Documents show the finished triage with its sections and answers.
    record = await _json(allocation, NORTH_SENIOR_OFFICER, f"/persons/{ref.person_id}")
    (document,) = [d for d in record["documents"] if d["work_item_id"] == str(ref.step_id)]
    answers = {a["name"]: a["answer"] for s in document["sections"] for a in s["answers"]}
    assert answers["risks_identified"] == "Falls at night"
    assert answers["trusted_assessment_needed"] == "Yes"
    labels = [a["label"] for s in document["sections"] for a in s["answers"]]
    assert "Level of risk" in labels


async def test_al13_generic_support_officer_resumes_and_finishes_case_monitoring(
    allocation: RunningService, driver: SignoffDriver
) -> None:
    person = f"P-{uuid.uuid4().hex[:8]}"
    await driver.ok(
        ReceiveReferral(person_id=person, person_name="Mary Somerville", area="North"),
        HUB_SENIOR_OFFICER,
        WorkItemCreated,
    )
    monitoring = await driver.ok(
        CreateStep(person_id=person, step_type=StepType.CASE_MONITORING),
        HUB_SENIOR_OFFICER,
        WorkItemCreated,
    )
    step_id = monitoring.work_item_id
    await driver.ok(StartStep(person_id=person, work_item_id=step_id), HUB_WORKER, WorkItemStarted)
    await driver.ok(
        RecordWorkerRelationship(person_id=person, worker_position_id=SUPPORT_OFFICER.position_id),
        NORTH_SENIOR_OFFICER,
        WorkerRelationshipRecorded,
    )
    # In the inbox nobody works it; the Generic Support Officer resumes it from current work.
    save = SaveStep(step_id=step_id, person_id=person, answers=MONITORING_ANSWERS)
    await driver.refused(save, SUPPORT_OFFICER, "AL13")
    await driver.ok(
        ResumeStep(person_id=person, work_item_id=step_id), SUPPORT_OFFICER, WorkItemResumed
    )
    await _signoff_sees_holder(driver, step_id, SUPPORT_OFFICER)
    await driver.refused(save, TRUSTED_ASSESSOR, "AL13")  # not the holder now
    await driver.ok(save, SUPPORT_OFFICER, StepSaved)
    close = NextActionInput(
        action_type=CLOSE_CASE_ACTION,
        assignee_kind="worker",
        assignee_id=SUPPORT_OFFICER.position_id,
    )
    await driver.ok(
        AddNextActions(step_id=step_id, person_id=person, actions=[close]),
        SUPPORT_OFFICER,
        NextActionsAdded,
    )
    sent = await driver.commands.send(
        FinishStep(step_id=step_id, person_id=person), SUPPORT_OFFICER.actor
    )
    (finished,) = await driver.log.outcome(sent.message_id)
    assert finished.type == StepFinished.TYPE
    await driver.log.wait_for(lambda: _caused(driver, finished, WorkItemFinished.TYPE))
    item = await _json(allocation, SUPPORT_OFFICER, f"/work-items/{step_id}")
    assert item["state"] == "finished"


# --- SO10 ---------------------------------------------------------------------------------------


async def test_so10_next_actions_changed_or_removed_until_the_step_is_finished(
    driver: SignoffDriver,
) -> None:
    ref = await driver.requested()
    assert ref.request_id is not None
    transfer = NextActionInput(
        action_type=TRANSFER_TO_SUPPORT_OFFICER,
        assignee_kind="worker",
        assignee_id=SUPPORT_OFFICER.position_id,
        note="Please deliver",
    )
    monitor = NextActionInput(
        action_type=CASE_MONITORING_ACTION,
        assignee_kind="team",
        assignee_id=HUB_TEAM,
        note="Keep an eye",
    )
    # The transfer goes to a Generic Support Officer only: not a Trusted Assessor, not a team.
    for wrong in (
        transfer.model_copy(update={"assignee_id": TRUSTED_ASSESSOR.position_id}),
        transfer.model_copy(update={"assignee_kind": "team", "assignee_id": NORTH_TEAM}),
    ):
        await driver.refused(
            AddNextActions(step_id=ref.step_id, person_id=ref.person_id, actions=[wrong]),
            SENIOR_OFFICER,
            "SO10",
        )
    added = await driver.ok(
        AddNextActions(step_id=ref.step_id, person_id=ref.person_id, actions=[transfer, monitor]),
        SENIOR_OFFICER,
        NextActionsAdded,
    )
    transfer_id, monitor_id = (a.action_id for a in added.next_actions)
    change = ChangeNextAction(
        step_id=ref.step_id,
        person_id=ref.person_id,
        action_id=transfer_id,
        action=transfer.model_copy(update={"note": "Start next Monday", "priority": "high"}),
    )
    remove = RemoveNextAction(step_id=ref.step_id, person_id=ref.person_id, action_id=monitor_id)
    # Attacks: a Senior Officer outside the Management Team, a Generic Support Officer.
    for attacker in (NORTH_SENIOR_OFFICER, SUPPORT_OFFICER):
        await driver.refused(change, attacker, "SO10")
        await driver.refused(remove, attacker, "SO10")
    to_assessor = change.model_copy(
        update={"action": transfer.model_copy(update={"assignee_id": TRUSTED_ASSESSOR.position_id})}
    )
    await driver.refused(to_assessor, SENIOR_OFFICER, "SO10")
    changed = await driver.ok(change, SENIOR_OFFICER, NextActionChanged)
    assert (changed.next_action.note, changed.next_action.priority) == ("Start next Monday", "high")
    assert (await driver.ok(remove, SENIOR_OFFICER, NextActionRemoved)).action_id == monitor_id
    await driver.refused(remove, SENIOR_OFFICER, "SO10")  # gone already
    summary = await driver.summary(ref)
    assert [(a["action_id"], a["note"]) for a in summary["next_actions"]] == [
        (str(transfer_id), "Start next Monday")
    ]
    await driver.ok(
        CompleteRequest(request_id=ref.request_id, step_id=ref.step_id, person_id=ref.person_id),
        SENIOR_OFFICER,
        RequestCompleted,
    )
    finished = await driver.ok(
        FinishStep(step_id=ref.step_id, person_id=ref.person_id), SENIOR_OFFICER, StepFinished
    )
    assert [(a.action_id, a.note) for a in finished.next_actions] == [
        (transfer_id, "Start next Monday")
    ]
    # Finished: no more changes.
    await driver.refused(change, SENIOR_OFFICER, "SO09")
    await driver.refused(
        RemoveNextAction(step_id=ref.step_id, person_id=ref.person_id, action_id=transfer_id),
        SENIOR_OFFICER,
        "SO09",
    )
