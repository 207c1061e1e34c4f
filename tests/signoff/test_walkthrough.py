"""The seed's sign-off walkthrough across the allocation and sign-off services, over Kafka: both
services run in-process and talk only through their topics; the outcome is read through
allocation's read API.

A Trusted Assessor sends the request from `WB Trusted Assessment and Support Planning`; it
appears in the Management Team's incoming requests; the Senior Officer adds `WB Transfer to
Support Officer for Service Delivery` for a Generic Support Officer, completes the request and
finishes; the officer's current work shows `WB Support Action Plan Delivery`. And the return
path: returned with a note, the step is back in the worker's incomplete work, not finished."""

from __future__ import annotations

import uuid
from typing import Any

from contracts import Envelope, Topics
from contracts.allocation import (
    AssignWork,
    CreateStep,
    IncomingRequestRecorded,
    RecordWorkerRelationship,
    StartStep,
    StepType,
    WorkerRelationshipRecorded,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemReturned,
    WorkItemStarted,
)
from contracts.signoff import (
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
from tests.conftest import RunningService
from tests.signoff.conftest import (
    COMPLETE_TA_ANSWERS,
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


async def _json(service: RunningService, reader: Seat, path: str) -> Any:
    """GET as the signed-in `reader` (TR05), who must be allowed to see it."""
    response = await service.get(reader.user_id, path)
    assert response.status_code == 200, response.text
    return response.json()


async def _allocation_knows_the_seats(allocation: RunningService) -> None:
    async def seated() -> bool:
        # Until the projection knows the Management Team's Senior Officer, the reads are
        # refused (403): not seated yet.
        north = await allocation.get(SENIOR_OFFICER.user_id, f"/teams/{NORTH_TEAM}")
        management = await allocation.get(SENIOR_OFFICER.user_id, f"/teams/{MANAGEMENT_TEAM}")
        if north.status_code != 200 or management.status_code != 200:
            return False
        workers = north.json()["workers"] + management.json()["workers"]
        have = {w["position_id"] for w in workers}
        return {
            SENIOR_OFFICER.position_id,
            NORTH_SENIOR_OFFICER.position_id,
            TRUSTED_ASSESSOR.position_id,
            SUPPORT_OFFICER.position_id,
        } <= have

    await wait_until(seated, "allocation's directory seeded")


async def _assessment_with_the_trusted_assessor(
    allocation: RunningService, driver: SignoffDriver
) -> StepRef:
    """The North Team's Senior Officer allocates a Trusted Assessment step (AL05, AL06) and the
    Trusted Assessor starts it, fills the form and sends the mandatory request (SO01)."""
    await _allocation_knows_the_seats(allocation)
    ref = StepRef(uuid.uuid4(), f"P-{uuid.uuid4().hex[:8]}")
    await driver.ok(
        CreateStep(
            person_id=ref.person_id,
            step_type=StepType.TRUSTED_ASSESSMENT,
            area="North",
            work_item_id=ref.step_id,
        ),
        NORTH_SENIOR_OFFICER,
        WorkItemCreated,
    )
    await driver.log.wait_for(lambda: driver.tracked(ref.step_id))
    await driver.ok(
        RecordWorkerRelationship(
            person_id=ref.person_id, worker_position_id=TRUSTED_ASSESSOR.position_id
        ),
        NORTH_SENIOR_OFFICER,
        WorkerRelationshipRecorded,
    )
    await driver.ok(
        AssignWork(
            person_id=ref.person_id,
            work_item_id=ref.step_id,
            to_position_id=TRUSTED_ASSESSOR.position_id,
            note="Please assess",
        ),
        NORTH_SENIOR_OFFICER,
        WorkItemAssigned,
    )
    await driver.ok(
        StartStep(person_id=ref.person_id, work_item_id=ref.step_id),
        TRUSTED_ASSESSOR,
        WorkItemStarted,
    )
    await driver.ok(
        SaveStep(step_id=ref.step_id, person_id=ref.person_id, answers=COMPLETE_TA_ANSWERS),
        TRUSTED_ASSESSOR,
        StepSaved,
    )
    sent = await driver.ok(
        SendRequest(step_id=ref.step_id, person_id=ref.person_id), TRUSTED_ASSESSOR, RequestSent
    )
    ref.request_id = sent.request_id
    return ref


def _caused(driver: SignoffDriver, cause: Envelope, event_type: str) -> list[Envelope]:
    return [e for e in driver.log.caused_by(cause.message_id) if e.type == event_type]


async def test_so01_so06_so09_signoff_walkthrough_across_allocation_and_signoff(
    allocation: RunningService, driver: SignoffDriver
) -> None:
    ref = await _assessment_with_the_trusted_assessor(allocation, driver)
    assert ref.request_id is not None
    title = f"{REQUEST_NAME} - {StepType.TRUSTED_ASSESSMENT.value}"

    # SO01, SO02: the request is in the Management Team's incoming requests, on both sides.
    incoming = await _json(
        driver.service, SENIOR_OFFICER, f"/teams/{MANAGEMENT_TEAM}/incoming-requests"
    )
    assert [
        r["title"] for r in incoming["incoming_requests"] if r["step_id"] == str(ref.step_id)
    ] == [title]
    await driver.log.wait_for(
        lambda: [
            e
            for e in driver.log.envelopes()
            if e.type == IncomingRequestRecorded.TYPE
            and e.payload["request_id"] == str(ref.request_id)
        ]
    )
    team_work = await _json(allocation, SENIOR_OFFICER, f"/teams/{MANAGEMENT_TEAM}/work")
    assert [
        r["title"] for r in team_work["incoming_requests"] if r["step_id"] == str(ref.step_id)
    ] == [title]

    # SO03, SO04, SO07, SO09: the Senior Officer reviews, adds the transfer, completes, finishes.
    summary = await driver.summary(ref)
    assert summary["prompted_actions"] == [TRANSFER_TO_SUPPORT_OFFICER]
    await driver.ok(
        AddNextActions(
            step_id=ref.step_id,
            person_id=ref.person_id,
            actions=[
                NextActionInput(
                    action_type=TRANSFER_TO_SUPPORT_OFFICER,
                    assignee_kind="worker",
                    assignee_id=SUPPORT_OFFICER.position_id,
                    note="Please deliver the support plan",
                )
            ],
        ),
        SENIOR_OFFICER,
        NextActionsAdded,
    )
    await driver.ok(
        CompleteRequest(request_id=ref.request_id, step_id=ref.step_id, person_id=ref.person_id),
        SENIOR_OFFICER,
        RequestCompleted,
    )
    # Finish is delivered twice and then clicked again: the work is created exactly once.
    finish_step = FinishStep(step_id=ref.step_id, person_id=ref.person_id)
    finish = driver.commands.envelope(finish_step, SENIOR_OFFICER.actor)
    for _ in range(2):
        await driver.commands.send(finish_step, SENIOR_OFFICER.actor, envelope=finish)
    await driver.refused(finish_step, SENIOR_OFFICER, "SO09")
    (finished,) = await driver.log.outcome(finish.message_id)
    assert finished.type == StepFinished.TYPE

    # SO06: allocation turns the next action into the officer's Support Action Plan Delivery.
    (created,) = await driver.log.wait_for(lambda: _caused(driver, finished, WorkItemCreated.TYPE))
    new_step = WorkItemCreated.model_validate(created.payload)
    work = await _json(allocation, SUPPORT_OFFICER, f"/workers/{SUPPORT_OFFICER.position_id}/work")
    assert [
        (i["work_item_id"], i["step_type"])
        for i in work["incoming_work"]
        if i["person_id"] == ref.person_id
    ] == [(str(new_step.work_item_id), StepType.SUPPORT_PLAN_DELIVERY.value)]
    # The finished step is locked in allocation and no longer anyone's current work.
    assert (await _json(allocation, SENIOR_OFFICER, f"/work-items/{ref.step_id}"))[
        "state"
    ] == "finished"
    ta_work = await _json(
        allocation, TRUSTED_ASSESSOR, f"/workers/{TRUSTED_ASSESSOR.position_id}/work"
    )
    assert str(ref.step_id) not in {
        i["work_item_id"] for i in ta_work["incoming_work"] + ta_work["incomplete_work"]
    }
    assert (await driver.summary(ref))["finished"] is True
    # And the new step is under sign-off in turn: its officer can send the request from it.
    await driver.log.wait_for(lambda: driver.tracked(new_step.work_item_id))
    sent = await driver.ok(
        SendRequest(step_id=new_step.work_item_id, person_id=ref.person_id),
        SUPPORT_OFFICER,
        RequestSent,
    )
    assert sent.title == f"{REQUEST_NAME} - {StepType.SUPPORT_PLAN_DELIVERY.value}"
    # Sign-off skipped every allocation event it does not need; none was dead-lettered.
    assert not [
        r
        for r in driver.log.records
        if r.topic == Topics.dead_letter(Topics.ALLOCATION_EVENTS)
        and r.key == ref.person_id.encode()
    ]


async def test_so07_returned_request_goes_back_to_the_workers_incomplete_work_not_finished(
    allocation: RunningService, driver: SignoffDriver
) -> None:
    ref = await _assessment_with_the_trusted_assessor(allocation, driver)
    assert ref.request_id is not None
    returned = await driver.commands.send(
        ReturnRequest(
            request_id=ref.request_id,
            step_id=ref.step_id,
            person_id=ref.person_id,
            note="Please record the risks in more detail",
        ),
        SENIOR_OFFICER.actor,
    )
    (event,) = await driver.log.outcome(returned.message_id)
    assert event.type == RequestReturned.TYPE
    assert event.payload["return_to_position_id"] == TRUSTED_ASSESSOR.position_id
    (moved,) = await driver.log.wait_for(lambda: _caused(driver, event, WorkItemReturned.TYPE))
    assert WorkItemReturned.model_validate(moved.payload).note == (
        "Please record the risks in more detail"
    )

    work = await _json(
        allocation, TRUSTED_ASSESSOR, f"/workers/{TRUSTED_ASSESSOR.position_id}/work"
    )
    assert str(ref.step_id) in {i["work_item_id"] for i in work["incomplete_work"]}
    item = await _json(allocation, SENIOR_OFFICER, f"/work-items/{ref.step_id}")
    assert item["state"] == "incomplete"
    management = await _json(allocation, SENIOR_OFFICER, f"/teams/{MANAGEMENT_TEAM}/work")
    assert str(ref.step_id) not in {r["step_id"] for r in management["incoming_requests"]}
    summary = await driver.summary(ref)
    assert summary["finished"] is False
    assert [r["state"] for r in summary["requests"]] == ["returned"]
