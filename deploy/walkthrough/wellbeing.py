"""The Wellbeing referral (seed 000), step by step: triage in the Hub Team finished into the
Trusted Assessment, which is refused without `Involved Worker` and then allocated; sign-off with
a next action to a Generic Support Officer; a returned request; the person's record; a late
referral that is overdue at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import Envelope
from contracts.allocation import (
    AssignWork,
    Priority,
    ReassignWork,
    ReceiveReferral,
    RecordWorkerRelationship,
    StartStep,
    StepType,
    WorkerRelationshipRecorded,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemCreatedV2,
    WorkItemOverdue,
    WorkItemReturned,
    WorkItemStarted,
)
from contracts.signoff import (
    CASE_MONITORING_ACTION,
    MANAGEMENT_TEAM,
    REQUEST_NAME,
    TRANSFER_TO_SUPPORT_OFFICER,
    TRUSTED_ASSESSMENT_ACTION,
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
    StepTracked,
)
from deploy.walkthrough.driver import Driver, StepFailed, expect, items
from deploy.walkthrough.people import (
    ASSESSMENT_ANSWERS,
    ASSESSOR,
    DELIVERY_ANSWERS,
    HUB_TEAM,
    HUB_WORKER,
    NORTH_TEAM,
    SO_HUB,
    SO_MGMT,
    SO_NORTH,
    SUPPORT_OFFICER,
    TRIAGE_ANSWERS,
    position_of,
)
from deploy.walkthrough.procedure import NOT_YET, Procedure
from services.allocation import deadlines


@dataclass
class Referral:
    """What the referral's steps have learnt so far: its person and the ids of its work."""

    person: str = ""
    triage: uuid.UUID = NOT_YET
    assessment: uuid.UUID = NOT_YET
    monitoring: uuid.UUID = NOT_YET
    request: uuid.UUID = NOT_YET  # the assessment's request for sign-off
    delivery: uuid.UUID = NOT_YET  # the Support Action Plan Delivery step
    delivery_created: Envelope | None = None  # the event that created it
    delivery_request: uuid.UUID = NOT_YET


async def referral(d: Driver, r: Referral) -> str:
    person = f"P-{uuid.uuid4().hex[:8]}"
    r.person = person
    created = await d.ok(
        ReceiveReferral(
            person_id=person, person_name="Edith Walker", area="North", reason="GP referral"
        ),
        SO_HUB,
        WorkItemCreated,
    )
    expect(created.step_type == StepType.TRIAGE, f"created {created.step_type}")
    expect((created.owner_kind, created.owner_id) == ("team", HUB_TEAM), "not the Hub Team's")
    r.triage = created.work_item_id
    # DL01: due two working days on (weekends and bank holidays do not count).
    due = deadlines.due_at_for(StepType.TRIAGE, created.created_at)
    expect(created.due_at == due, f"triage due {created.due_at}, not {due}")
    await d.read(
        SO_HUB,
        "allocation",
        f"/teams/{HUB_TEAM}/work",
        lambda b: any(
            i["work_item_id"] == str(created.work_item_id) and i["overdue"] is False
            for i in b["incoming_work"]
        ),
        "triage in the Hub Team's incoming work, not overdue",
    )
    return (
        f"triage {created.work_item_id} in the Hub Team's incoming work (AL01), "
        f"due {due.date().isoformat()} (DL01)"
    )


async def late_referral_overdue(d: Driver, r: Referral) -> str:
    """DL01, DL02: a referral that reached the service a week before it was logged is due from
    its receipt, so it is overdue at once; the service's own sweep flags it and the Hub Team's
    Senior Officer is told."""
    received = datetime.now(UTC) - timedelta(days=7)
    created = await d.ok(
        ReceiveReferral(
            person_id=f"P-{uuid.uuid4().hex[:8]}",
            person_name="Owen Late",
            area="South",
            reason="referral letter received by post last week",
            received_at=received,
        ),
        SO_HUB,
        WorkItemCreated,
    )
    due = deadlines.due_at_for(StepType.TRIAGE, received)
    expect(created.due_at == due, f"due {created.due_at}, not {due} from its receipt")
    await d.event(WorkItemOverdue, person_id=created.person_id)
    await d.read(
        SO_HUB,
        "allocation",
        f"/teams/{HUB_TEAM}/work",
        lambda b: any(
            i["work_item_id"] == str(created.work_item_id) and i["overdue"] is True
            for i in b["incoming_work"]
        ),
        "the late triage flagged overdue in the Hub Team's incoming work",
    )
    await d.notified(SO_HUB.user_id, "DL02", work_item_id=created.work_item_id)
    return (
        f"triage received {received.date().isoformat()}, due {due.date().isoformat()}: "
        "flagged overdue and its Senior Officer told (DL01, DL02)"
    )


async def triage_assigned(d: Driver, r: Referral) -> str:
    assigned = await d.ok(
        AssignWork(
            person_id=r.person,
            work_item_id=r.triage,
            to_position_id=position_of(HUB_WORKER),
            note="Please triage today",
            priority=Priority.HIGH,
        ),
        SO_HUB,
        WorkItemAssigned,
    )
    expect(assigned.item.owner_id == HUB_WORKER.position_id, "not with the Hub worker")
    expect(assigned.item.priority == Priority.HIGH, "priority unchanged")
    await d.notified(HUB_WORKER.user_id, "NT01", work_item_id=r.triage)
    return "with hub-1, priority high (AL06, AL07)"


async def triage_started(d: Driver, r: Referral) -> str:
    started = await d.ok(
        StartStep(person_id=r.person, work_item_id=r.triage),
        HUB_WORKER,
        WorkItemStarted,
    )
    expect(started.item.state == "incomplete", f"state {started.item.state}")
    return "triage now in hub-1's incomplete work"


async def triage_finished(d: Driver, r: Referral) -> str:
    """AL13: the Hub Team worker fills triage in, adds its next actions and finishes it; the
    Trusted Assessment step follows (to the North Team by the person's area, AL02) with Case
    Monitoring in the Hub Team's incoming work (AL03)."""
    person, triage = r.person, r.triage
    saved = await d.ok(
        SaveStep(step_id=triage, person_id=person, answers=TRIAGE_ANSWERS), HUB_WORKER, StepSaved
    )
    expect(saved.incomplete_mandatory == [], f"incomplete: {saved.incomplete_mandatory}")
    expect(
        saved.prompted_actions == [TRUSTED_ASSESSMENT_ACTION, CASE_MONITORING_ACTION],
        f"prompted {saved.prompted_actions}",
    )
    await d.ok(
        AddNextActions(
            step_id=triage,
            person_id=person,
            actions=[
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
            ],
        ),
        HUB_WORKER,
        NextActionsAdded,
    )
    await d.ok(FinishStep(step_id=triage, person_id=person), HUB_WORKER, StepFinished)
    assert d.last is not None
    try:
        created_envelopes = await d.caused(d.last, WorkItemCreated, 2)
    except StepFailed:
        raise StepFailed("triage's next actions did not become two new steps") from None
    created = {
        c.step_type: c
        for c in (WorkItemCreated.model_validate(e.payload) for e in created_envelopes)
    }
    assessment = created.get(StepType.TRUSTED_ASSESSMENT)
    monitoring = created.get(StepType.CASE_MONITORING)
    expect(assessment is not None and monitoring is not None, f"created {sorted(created)}")
    assert assessment is not None and monitoring is not None
    expect(assessment.owner_id == NORTH_TEAM, f"routed to {assessment.owner_id}")
    expect(monitoring.owner_id == HUB_TEAM, f"Case Monitoring routed to {monitoring.owner_id}")
    r.assessment, r.monitoring = assessment.work_item_id, monitoring.work_item_id
    await d.event(StepTracked, step_id=assessment.work_item_id)
    return (
        "triage finished by hub-1 (AL13); its next actions: Trusted Assessment in the North "
        "Team's incoming work (AL02), Case Monitoring in the Hub Team's (AL03)"
    )


async def allocation_refused(d: Driver, r: Referral) -> str:
    refused = await d.refused(
        AssignWork(
            person_id=r.person,
            work_item_id=r.assessment,
            to_position_id=position_of(ASSESSOR),
        ),
        SO_NORTH,
        "AL05",
    )
    return f"refused: AL05 {refused.reason}"


async def involved_worker(d: Driver, r: Referral) -> str:
    recorded = await d.ok(
        RecordWorkerRelationship(person_id=r.person, worker_position_id=position_of(ASSESSOR)),
        SO_NORTH,
        WorkerRelationshipRecorded,
    )
    return f"{recorded.relationship_type} {recorded.worker_user_id} from {recorded.from_date}"


async def assessment_allocated(d: Driver, r: Referral) -> str:
    assigned = await d.ok(
        AssignWork(
            person_id=r.person,
            work_item_id=r.assessment,
            to_position_id=position_of(ASSESSOR),
            note="Assessment for you",
        ),
        SO_NORTH,
        WorkItemAssigned,
    )
    expect(assigned.item.owner_id == ASSESSOR.position_id, "not with the Trusted Assessor")
    await d.notified(ASSESSOR.user_id, "NT01", work_item_id=r.assessment)
    return "with ta-north-1 (AL05, AL06)"


async def monitoring_reassigned(d: Driver, r: Referral) -> str:
    person, step = r.person, r.monitoring
    started = await d.ok(
        StartStep(person_id=person, work_item_id=step), HUB_WORKER, WorkItemStarted
    )
    inbox = started.item.owner_id
    expect(started.item.owner_kind == "inbox", f"started into {started.item.owner_kind}")
    reassigned = await d.ok(
        ReassignWork(
            person_id=person,
            work_item_id=step,
            to_position_id=position_of(ASSESSOR),
            note="Monitoring alongside the assessment",
        ),
        SO_NORTH,
        WorkItemAssigned,
    )
    expect(reassigned.reassigned, "not a reassignment")
    await d.read(
        ASSESSOR,
        "allocation",
        f"/workers/{ASSESSOR.position_id}/work",
        lambda b: str(step) in items(b, "incomplete_work"),
        "Case Monitoring in the Trusted Assessor's incomplete work",
    )
    await d.notified(ASSESSOR.user_id, "NT01", work_item_id=step)
    return (
        f"Hub Team incoming work, started into {inbox} (AL03), reassigned to ta-north-1's "
        "incomplete work (AL09)"
    )


async def assessment_done(d: Driver, r: Referral) -> str:
    person, step = r.person, r.assessment
    await d.ok(StartStep(person_id=person, work_item_id=step), ASSESSOR, WorkItemStarted)
    saved = await d.ok(
        SaveStep(step_id=step, person_id=person, answers=ASSESSMENT_ANSWERS), ASSESSOR, StepSaved
    )
    expect(saved.incomplete_mandatory == [], f"incomplete: {saved.incomplete_mandatory}")
    return f"started, form saved; prompted next action: {', '.join(saved.prompted_actions)}"


async def request_sent(d: Driver, r: Referral) -> str:
    sent = await d.ok(
        SendRequest(step_id=r.assessment, person_id=r.person),
        ASSESSOR,
        RequestSent,
    )
    title = f"{REQUEST_NAME} - {StepType.TRUSTED_ASSESSMENT.value}"
    expect(sent.title == title, f"title {sent.title!r}")
    expect(sent.team == MANAGEMENT_TEAM, f"sent to {sent.team}")
    r.request = sent.request_id
    await d.read(
        SO_MGMT,
        "allocation",
        f"/teams/{MANAGEMENT_TEAM}/work",
        lambda b: str(sent.request_id) in {r["request_id"] for r in b["incoming_requests"]},
        "the request in the Management Team's incoming requests",
    )
    await d.notified(SO_MGMT.user_id, "NT02", request_id=sent.request_id)
    return "in the Management Team's incoming requests (SO01, SO02)"


async def next_action_added(d: Driver, r: Referral) -> str:
    added = await d.ok(
        AddNextActions(
            step_id=r.assessment,
            person_id=r.person,
            actions=[
                NextActionInput(
                    action_type=TRANSFER_TO_SUPPORT_OFFICER,
                    assignee_kind="worker",
                    assignee_id=position_of(SUPPORT_OFFICER),
                    note="Please deliver the support plan",
                )
            ],
        ),
        SO_MGMT,
        NextActionsAdded,
    )
    return f"{added.next_actions[0].action_type} to gso-north-1 (SO04, SO06)"


async def request_completed(d: Driver, r: Referral) -> str:
    await d.ok(
        CompleteRequest(
            request_id=r.request,
            step_id=r.assessment,
            person_id=r.person,
        ),
        SO_MGMT,
        RequestCompleted,
    )
    return "accepted (SO07)"


async def step_finished(d: Driver, r: Referral) -> str:
    await d.ok(
        FinishStep(step_id=r.assessment, person_id=r.person),
        SO_MGMT,
        StepFinished,
    )
    finished = d.last
    created = await d.followed(finished, WorkItemCreated)
    expect(created.step_type == StepType.SUPPORT_PLAN_DELIVERY, f"created {created.step_type}")
    expect(created.owner_id == SUPPORT_OFFICER.position_id, f"owned by {created.owner_id}")
    r.delivery = created.work_item_id
    await d.followed(finished, WorkItemCreatedV2)  # the version sign-off reads (v1 beside it)
    r.delivery_created = d.last
    await d.read(
        SO_NORTH,
        "allocation",
        f"/work-items/{r.assessment}",
        lambda b: b["state"] == "finished",
        "the assessment locked",
    )
    await d.notified(SUPPORT_OFFICER.user_id, "NT01", work_item_id=created.work_item_id)
    # SO10, AL11: the Senior Officer is prompted to record the officer as Involved Worker.
    await d.notified(SO_MGMT.user_id, "SO10", work_item_id=created.work_item_id)
    return (
        "assessment locked; Support Action Plan Delivery with gso-north-1 (SO09); so-mgmt "
        "prompted to record the Involved Worker (SO10)"
    )


async def officer_involved(d: Driver, r: Referral) -> str:
    await d.ok(
        RecordWorkerRelationship(
            person_id=r.person, worker_position_id=position_of(SUPPORT_OFFICER)
        ),
        SO_NORTH,
        WorkerRelationshipRecorded,
    )
    record = await d.read(
        SO_NORTH,
        "allocation",
        f"/persons/{r.person}",
        lambda b: len(b["professional_relationships"]) == 2,
        "both Involved Worker relationships on the record",
    )
    return f"Involved Worker gso-north-1 (AL11); history has {len(record['work_history'])} entries"


async def delivery_sent(d: Driver, r: Referral) -> str:
    person, step = r.person, r.delivery
    await d.followed(r.delivery_created, StepTracked)
    await d.ok(StartStep(person_id=person, work_item_id=step), SUPPORT_OFFICER, WorkItemStarted)
    await d.ok(
        SaveStep(step_id=step, person_id=person, answers=DELIVERY_ANSWERS),
        SUPPORT_OFFICER,
        StepSaved,
    )
    sent = await d.ok(SendRequest(step_id=step, person_id=person), SUPPORT_OFFICER, RequestSent)
    r.delivery_request = sent.request_id
    await d.notified(SO_MGMT.user_id, "NT02", request_id=sent.request_id)
    return "delivery step started, saved, request sent (SO01)"


async def request_returned(d: Driver, r: Referral) -> str:
    person, step = r.person, r.delivery
    note = "Please describe the outcomes in more detail"
    returned = await d.ok(
        ReturnRequest(request_id=r.delivery_request, step_id=step, person_id=person, note=note),
        SO_MGMT,
        RequestReturned,
    )
    expect(returned.return_to_position_id == SUPPORT_OFFICER.position_id, "returned elsewhere")
    back = await d.followed(d.last, WorkItemReturned)
    expect(back.item.state == "incomplete", f"state {back.item.state}")
    await d.read(
        SUPPORT_OFFICER,
        "allocation",
        f"/workers/{SUPPORT_OFFICER.position_id}/work",
        lambda b: str(step) in items(b, "incomplete_work"),
        "the step back in the officer's incomplete work",
    )
    await d.notified(SUPPORT_OFFICER.user_id, "NT03", request_id=r.delivery_request)
    return "back in gso-north-1's incomplete work, not finished (SO07)"


async def person_record(d: Driver, r: Referral) -> str:
    person = r.person
    steps = {str(r.triage), str(r.assessment), str(r.delivery)}

    def complete(b: Any) -> bool:
        history = {h["work_item_id"] for h in b["work_history"]}
        return steps <= history and len(b["professional_relationships"]) == 2

    record = await d.read(
        SO_NORTH, "allocation", f"/persons/{person}", complete, "the person's record"
    )
    documents = {d["work_item_id"]: d["step_type"] for d in record["documents"]}
    expect(
        documents
        == {
            str(r.triage): StepType.TRIAGE.value,
            str(r.assessment): StepType.TRUSTED_ASSESSMENT.value,
        },
        f"documents {documents}",
    )
    # AL15: each document shows its sections and answers.
    answers = {
        a["name"]: a["answer"]
        for d in record["documents"]
        for section in d["sections"]
        for a in section["answers"]
    }
    expect(answers.get("what_matters") == ASSESSMENT_ANSWERS["what_matters"], "no content")
    current = {c["work_item_id"] for c in record["current_work"]}
    expect(str(r.delivery) in current, "the delivery step is not current work")
    changes = [h["change"] for h in record["work_history"]]
    expect({"created", "assigned", "started", "reassigned"} <= set(changes), f"{changes}")
    workers = sorted(r["worker_user_id"] for r in record["professional_relationships"])
    return (
        f"documents: triage and the assessment with their answers (AL15); {len(current)} steps "
        f"current; work history of "
        f"{len(changes)} changes ({', '.join(sorted(set(changes)))}) (AL04, AL12); Involved "
        f"Workers {', '.join(workers)}"
    )


WELLBEING = Procedure(
    "Wellbeing referral",
    Referral,
    [
        ("referral received", referral),
        ("triage assigned to a Hub Team worker", triage_assigned),
        ("triage started", triage_started),
        ("triage finished into the Trusted Assessment step", triage_finished),
        ("allocation without Involved Worker refused", allocation_refused),
        ("Involved Worker recorded", involved_worker),
        ("Trusted Assessment allocated", assessment_allocated),
        ("Case Monitoring reassigned from the inbox", monitoring_reassigned),
        ("assessment started and filled in", assessment_done),
        ("request sent for sign-off", request_sent),
        ("next action to a Generic Support Officer", next_action_added),
        ("request completed", request_completed),
        ("step finished, next action sent", step_finished),
        ("Involved Worker recorded for the officer", officer_involved),
        ("support plan delivered, request sent", delivery_sent),
        ("request returned with a note", request_returned),
        ("the person's record shows the whole path", person_record),
        ("a referral received late is overdue and escalated", late_referral_overdue),
    ],
)
