"""The Mosaic walkthrough, end to end over Kafka: screening and allocating a referral, the
Trusted Assessment refused without `Involved Worker` (AL05), then allocated, and the Case
Monitoring step reassigned from the inbox; the person's work history shows every step (AL12)."""

from __future__ import annotations

from contracts.allocation import (
    AssignWork,
    Priority,
    ReassignWork,
    RecordWorkerRelationship,
    StartStep,
    StepType,
    WorkerRelationshipRecorded,
    WorkItemAssigned,
    WorkItemStarted,
)
from services.allocation import domain
from tests.allocation.helpers import (
    HUB_1,
    SO_HUB,
    SO_NORTH,
    TA_NORTH,
    get,
    ok,
    only,
    referral,
    refused,
    step,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

INBOX_NORTH = domain.CASE_MONITORING_INBOXES[domain.Area.NORTH]


async def test_al12_mosaic_walkthrough_end_to_end(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    # Referral: triage in the Hub Team's incoming work (AL01).
    triage = await referral(commands, event_log, name="Walter Walkthrough")
    person = triage.person_id
    hub_work = await get(directory, SO_HUB, f"/teams/{domain.HUB_TEAM}/work")
    assert str(triage.work_item_id) in {i["work_item_id"] for i in hub_work["incoming_work"]}

    # The Hub Senior Officer assigns it to a Hub worker from the team's current work, raising
    # the priority (AL06, AL07); no relationship is needed for triage (AL05).
    events = await ok(
        commands,
        event_log,
        AssignWork(
            person_id=person,
            work_item_id=triage.work_item_id,
            to_position_id=HUB_1.position_id or "",
            note="please triage today",
            priority=Priority.HIGH,
        ),
        SO_HUB,
    )
    assigned = only(events, WorkItemAssigned)
    assert (assigned.item.owner_kind, assigned.item.owner_id) == ("worker", HUB_1.position_id)
    assert assigned.item.owner_user_id == HUB_1.user_id and assigned.item.priority == "high"
    hub_worker = await get(directory, HUB_1, f"/workers/{HUB_1.position_id}/work")
    assert str(triage.work_item_id) in {i["work_item_id"] for i in hub_worker["incoming_work"]}

    # The Trusted Assessment step lands in the North Team (AL02); Case Monitoring is Hub Team
    # incoming work until a Hub worker starts it, then it sits in the North inbox (AL03).
    assessment = await step(commands, event_log, person, StepType.TRUSTED_ASSESSMENT)
    assert assessment.owner_id == domain.NORTH_TEAM
    monitoring = await step(commands, event_log, person, StepType.CASE_MONITORING)
    assert monitoring.owner_id == domain.HUB_TEAM
    started = only(
        await ok(
            commands,
            event_log,
            StartStep(person_id=person, work_item_id=monitoring.work_item_id),
            HUB_1,
        ),
        WorkItemStarted,
    )
    assert (started.item.state, started.item.owner_id) == ("incomplete", INBOX_NORTH)

    # Refused for the Trusted Assessor without `Involved Worker` (AL05).
    allocate = AssignWork(
        person_id=person,
        work_item_id=assessment.work_item_id,
        to_position_id=TA_NORTH.position_id or "",
        from_record=True,
    )
    rejection = await refused(commands, event_log, allocate, SO_NORTH)
    assert rejection.rule == "AL05" and "Involved Worker" in rejection.reason

    # The relationship is recorded (from-date defaults to today), then the step is assigned.
    recorded = only(
        await ok(
            commands,
            event_log,
            RecordWorkerRelationship(
                person_id=person, worker_position_id=TA_NORTH.position_id or ""
            ),
            SO_NORTH,
        ),
        WorkerRelationshipRecorded,
    )
    assert recorded.worker_user_id == TA_NORTH.user_id and recorded.end_date is None
    again = allocate.model_copy(update={"note": "assessment for you"})
    assigned_ta = only(await ok(commands, event_log, again, SO_NORTH), WorkItemAssigned)
    assert assigned_ta.item.owner_id == TA_NORTH.position_id
    assert assigned_ta.item.state == "incoming"

    # Case Monitoring is reassigned from the inbox to the Trusted Assessor (AL09).
    reassigned = only(
        await ok(
            commands,
            event_log,
            ReassignWork(
                person_id=person,
                work_item_id=monitoring.work_item_id,
                to_position_id=TA_NORTH.position_id or "",
                note="monitoring with the assessment",
            ),
            SO_NORTH,
        ),
        WorkItemAssigned,
    )
    assert reassigned.reassigned and reassigned.item.state == "incomplete"
    ta_work = await get(directory, TA_NORTH, f"/workers/{TA_NORTH.position_id}/work")
    mine = {
        folder: [i["step_type"] for i in ta_work[folder] if i["person_id"] == person]
        for folder in ("incoming_work", "incomplete_work")
    }
    assert mine == {
        "incoming_work": [StepType.TRUSTED_ASSESSMENT],
        "incomplete_work": [StepType.CASE_MONITORING],
    }

    # The person's record: every step in the work history, who, when, from whom to whom.
    record = await get(directory, SO_NORTH, f"/persons/{person}")
    history = [
        (h["step_type"], h["change"], h["actor_user_id"], h["from_owner"], h["to_owner"])
        for h in record["work_history"]
    ]
    assert history == [
        (StepType.TRIAGE, "created", SO_HUB.user_id, None, f"team:{domain.HUB_TEAM}"),
        (
            StepType.TRIAGE,
            "assigned",
            SO_HUB.user_id,
            f"team:{domain.HUB_TEAM}",
            f"worker:{HUB_1.position_id}",
        ),
        (StepType.TRUSTED_ASSESSMENT, "created", SO_HUB.user_id, None, f"team:{domain.NORTH_TEAM}"),
        (StepType.CASE_MONITORING, "created", SO_HUB.user_id, None, f"team:{domain.HUB_TEAM}"),
        (
            StepType.CASE_MONITORING,
            "started",
            HUB_1.user_id,
            f"team:{domain.HUB_TEAM}",
            f"inbox:{INBOX_NORTH}",
        ),
        (
            StepType.TRUSTED_ASSESSMENT,
            "assigned",
            SO_NORTH.user_id,
            f"team:{domain.NORTH_TEAM}",
            f"worker:{TA_NORTH.position_id}",
        ),
        (
            StepType.CASE_MONITORING,
            "reassigned",
            SO_NORTH.user_id,
            f"inbox:{INBOX_NORTH}",
            f"worker:{TA_NORTH.position_id}",
        ),
    ]
    notes = [h["detail"].get("note") for h in record["work_history"] if h["detail"].get("note")]
    assert notes == ["please triage today", "assessment for you", "monitoring with the assessment"]
    assert all(h["at"] for h in record["work_history"])
    assert [r["worker_name"] for r in record["professional_relationships"]] == ["Grace Mensah"]
    assert {m["step_type"]: m["status"] for m in record["workflow_map"]} == {
        StepType.TRIAGE: "incoming",
        StepType.TRUSTED_ASSESSMENT: "incoming",
        StepType.CASE_MONITORING: "incomplete",
        StepType.SUPPORT_PLAN_DELIVERY: "not reached",
    }
