"""What sign-off's events do to the work: finishing locks the step and sends each next action
as new work, once (SO09, SO06, AL11); a returned request sends the step back (SO07)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from contracts import Topics
from contracts.allocation import (
    AssignWork,
    ReassignWork,
    RecordWorkerRelationship,
    StartStep,
    StepType,
    WorkItemCreated,
    WorkItemFinished,
    WorkItemReturned,
)
from contracts.signoff import NextAction, RequestReturned, RequestSent, StepFinished
from services.allocation import domain, store
from tests.allocation.helpers import (
    GSO_NORTH,
    HUB_1,
    SO_MGMT,
    SO_NORTH,
    TA_NORTH,
    eventually,
    get,
    ok,
    only,
    publish,
    reaction,
    referral,
    refused,
    step,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

GSO = GSO_NORTH.position_id or ""
TRANSFER = "WB Transfer to Support Officer for Service Delivery"


async def _assessment_with_ta(
    commands: CommandClient, event_log: EventLog
) -> tuple[str, WorkItemCreated, WorkItemCreated]:
    """A person with a Trusted Assessment step given to the Trusted Assessor, who started it,
    and a Case Monitoring step started into the North inbox."""
    triage = await referral(commands, event_log, name="Sally Signoff")
    person = triage.person_id
    assessment = await step(commands, event_log, person, StepType.TRUSTED_ASSESSMENT)
    monitoring = await step(commands, event_log, person, StepType.CASE_MONITORING)
    await ok(
        commands,
        event_log,
        RecordWorkerRelationship(person_id=person, worker_position_id=TA_NORTH.position_id or ""),
        SO_NORTH,
    )
    await ok(
        commands,
        event_log,
        AssignWork(
            person_id=person,
            work_item_id=assessment.work_item_id,
            to_position_id=TA_NORTH.position_id or "",
        ),
        SO_NORTH,
    )
    await ok(
        commands,
        event_log,
        StartStep(person_id=person, work_item_id=assessment.work_item_id),
        TA_NORTH,
    )
    start_monitoring = StartStep(person_id=person, work_item_id=monitoring.work_item_id)
    await ok(commands, event_log, start_monitoring, HUB_1)
    return person, assessment, monitoring


async def test_al11_transfer_to_support_officer_then_involved_worker_and_case_monitoring(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    person, assessment, monitoring = await _assessment_with_ta(commands, event_log)
    finished = StepFinished(
        step_id=assessment.work_item_id,
        person_id=person,
        step_type=StepType.TRUSTED_ASSESSMENT,
        finished_by_position_id=SO_MGMT.position_id,
        next_actions=[
            NextAction(
                action_id=uuid.uuid4(),
                action_type=TRANSFER,
                assignee_kind="worker",
                assignee_id=GSO,
                note="support plan for delivery",
                priority="high",
            )
        ],
    )
    events = await reaction(commands, event_log, finished, Topics.SIGNOFF_EVENTS)
    locked = only(events, WorkItemFinished)
    assert (locked.item.work_item_id, locked.item.state) == (assessment.work_item_id, "finished")
    created = only(events, WorkItemCreated)
    # SO06: the transfer arrives as a Support Action Plan Delivery step in the officer's work.
    assert created.step_type is StepType.SUPPORT_PLAN_DELIVERY
    assert (created.owner_id, created.owner_user_id, created.priority, created.note) == (
        GSO,
        GSO_NORTH.user_id,
        "high",
        "support plan for delivery",
    )
    gso_work = await get(directory, GSO_NORTH, f"/workers/{GSO}/work")
    assert str(created.work_item_id) in {i["work_item_id"] for i in gso_work["incoming_work"]}
    record = await get(directory, SO_NORTH, f"/persons/{person}")
    assert [d["work_item_id"] for d in record["documents"]] == [str(assessment.work_item_id)]
    # A finished step is locked: it cannot be assigned.
    lock = AssignWork(
        person_id=person, work_item_id=assessment.work_item_id, to_position_id="pos-hub-2"
    )
    assert (await refused(commands, event_log, lock, SO_NORTH)).rule == "AL06"

    # AL11: Case Monitoring may move to the officer once `Involved Worker` is recorded.
    move = ReassignWork(person_id=person, work_item_id=monitoring.work_item_id, to_position_id=GSO)
    assert (await refused(commands, event_log, move, SO_NORTH)).rule == "AL05"
    await ok(
        commands,
        event_log,
        RecordWorkerRelationship(person_id=person, worker_position_id=GSO),
        SO_MGMT,
    )
    await ok(commands, event_log, move, SO_NORTH)


async def test_so09_duplicate_step_finished_creates_the_work_exactly_once(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    person, assessment, _ = await _assessment_with_ta(commands, event_log)
    finished = StepFinished(
        step_id=assessment.work_item_id,
        person_id=person,
        step_type=StepType.TRUSTED_ASSESSMENT,
        next_actions=[
            NextAction(
                action_id=uuid.uuid4(),
                action_type=TRANSFER,
                assignee_kind="worker",
                assignee_id=GSO,
            ),
            NextAction(
                action_id=uuid.uuid4(),
                action_type=StepType.CASE_MONITORING.value,
                assignee_kind="team",
                assignee_id=domain.HUB_TEAM,
            ),
        ],
    )
    first = await publish(commands, finished, Topics.SIGNOFF_EVENTS)
    # The same message delivered again, and the same fact republished under a new id.
    await commands.send_raw(
        Topics.SIGNOFF_EVENTS, first.model_dump_json().encode(), key=finished.key()
    )
    replay = await publish(commands, finished, Topics.SIGNOFF_EVENTS)
    created = [
        e for e in await event_log.outcome(first.message_id) if e.type == WorkItemCreated.TYPE
    ]
    assert len(created) == 2

    async def applied() -> bool:
        async with directory.runtime.engine.connect() as conn:
            seen = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(store.inbox)
                .where(store.inbox.c.message_id == replay.message_id)
            )
        return bool(seen)

    await eventually(applied)
    assert event_log.caused_by(replay.message_id) == []
    record = await get(directory, SO_NORTH, f"/persons/{person}")
    steps = sorted(i["step_type"] for i in record["current_work"])
    assert steps == sorted(
        [
            StepType.TRIAGE,
            StepType.CASE_MONITORING,
            StepType.CASE_MONITORING,
            StepType.SUPPORT_PLAN_DELIVERY,
        ]
    )


async def test_so07_returned_request_sends_the_step_back_to_its_worker(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    person, assessment, _ = await _assessment_with_ta(commands, event_log)
    # The Senior Officer had taken the step up; the request is returned to the assessor.
    await ok(
        commands,
        event_log,
        ReassignWork(
            person_id=person,
            work_item_id=assessment.work_item_id,
            to_position_id=SO_MGMT.position_id or "",
        ),
        SO_MGMT,
    )
    request_id = uuid.uuid4()
    sent = RequestSent(
        request_id=request_id,
        step_id=assessment.work_item_id,
        person_id=person,
        title="review",
        team=domain.MANAGEMENT_TEAM,
    )
    await reaction(commands, event_log, sent, Topics.SIGNOFF_EVENTS)
    returned = RequestReturned(
        request_id=request_id,
        step_id=assessment.work_item_id,
        person_id=person,
        note="please add the carer's details",
        return_to_position_id=TA_NORTH.position_id,
    )
    back = only(
        await reaction(commands, event_log, returned, Topics.SIGNOFF_EVENTS), WorkItemReturned
    )
    assert (back.item.state, back.item.owner_id, back.note) == (
        "incomplete",
        TA_NORTH.position_id,
        "please add the carer's details",
    )
    ta_work = await get(directory, TA_NORTH, f"/workers/{TA_NORTH.position_id}/work")
    assert str(assessment.work_item_id) in {i["work_item_id"] for i in ta_work["incomplete_work"]}
    requests = (await get(directory, SO_MGMT, f"/teams/{domain.MANAGEMENT_TEAM}/work"))[
        "incoming_requests"
    ]
    assert str(request_id) not in {r["request_id"] for r in requests}
