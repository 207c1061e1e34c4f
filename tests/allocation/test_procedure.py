"""The rest of the casework procedure in allocation (AL13, AL14, AL16, AC23, SO10/AL11, AL15),
over the real broker and database, each with the attacks of a worker without the right
position."""

from __future__ import annotations

import uuid

from contracts import Actor, Topics
from contracts.access import AccessKind, Role
from contracts.allocation import (
    AssignWork,
    CompleteServiceRequest,
    InvolvedWorkerPrompted,
    ReassignWork,
    ReceiveServiceRequest,
    RecordWorkerRelationship,
    RelationshipType,
    ResumeStep,
    ServiceRequestCompleted,
    StartStep,
    StepType,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemFinished,
    WorkItemResumed,
    WorkItemStarted,
)
from contracts.signoff import (
    CASE_MONITORING_ACTION,
    TRANSFER_TO_SUPPORT_OFFICER,
    TRUSTED_ASSESSMENT_ACTION,
    DocumentAnswer,
    DocumentSection,
    NextAction,
    StepFinished,
)
from services.allocation import domain
from services.edge.app import POSITION_HEADER
from tests.allocation.helpers import (
    GSO_NORTH,
    HUB_1,
    SO_HUB,
    SO_MGMT,
    SO_NORTH,
    SO_SOUTH,
    TA_NORTH,
    get,
    grant,
    ok,
    only,
    reaction,
    referral,
    refused,
    step,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

APPEALS_TEAM = "team-appeals-1"
TL_APPEALS = Actor(user_id="tl-appeals-1", position_id="pos-tl-appeals-1")


def _pos(actor: Actor) -> str:
    return actor.position_id or ""


async def _involved(
    commands: CommandClient, event_log: EventLog, person_id: str, worker: Actor, by: Actor
) -> None:
    await ok(
        commands,
        event_log,
        RecordWorkerRelationship(person_id=person_id, worker_position_id=_pos(worker)),
        by,
    )


async def _monitoring_started_by_hub_worker(
    commands: CommandClient, event_log: EventLog, area: str = "North"
) -> WorkItemStarted:
    """A Case Monitoring step the Hub Team's Senior Officer gave a Hub Team worker, who started
    it: incomplete work of that worker."""
    triage = await referral(commands, event_log, area=area)
    monitoring = await step(commands, event_log, triage.person_id, StepType.CASE_MONITORING)
    assign = AssignWork(
        person_id=triage.person_id,
        work_item_id=monitoring.work_item_id,
        to_position_id=_pos(HUB_1),
    )
    await ok(commands, event_log, assign, SO_HUB)
    start = StartStep(person_id=triage.person_id, work_item_id=monitoring.work_item_id)
    started = only(await ok(commands, event_log, start, HUB_1), WorkItemStarted)
    assert (started.item.owner_kind, started.item.owner_id) == ("worker", _pos(HUB_1))
    return started


# --- AL14 ---------------------------------------------------------------------------------------


async def test_al14_area_senior_officer_reassigns_case_monitoring_a_hub_worker_started(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    started = await _monitoring_started_by_hub_worker(commands, event_log, area="North")
    person, item_id = started.person_id, started.item.work_item_id
    # TR05 with AL14: the North Senior Officer finds it on the person's record and reads it;
    # the South Team's does not.
    record = await get(directory, SO_NORTH, f"/persons/{person}")
    assert str(item_id) in {i["work_item_id"] for i in record["current_work"]}
    assert (await get(directory, SO_NORTH, f"/work-items/{item_id}"))["owner_id"] == _pos(HUB_1)
    south_read = await directory.get(SO_SOUTH.user_id, f"/work-items/{item_id}")
    assert south_read.status_code == 403 and south_read.json()["rule"] == "AL10"
    await _involved(commands, event_log, person, TA_NORTH, SO_NORTH)
    to_ta = ReassignWork(person_id=person, work_item_id=item_id, to_position_id=_pos(TA_NORTH))
    # Attacks: the other area's Senior Officer, and the area's Trusted Assessor, are refused.
    assert (await refused(commands, event_log, to_ta, SO_SOUTH)).rule == "AL10"
    assert (await refused(commands, event_log, to_ta, TA_NORTH)).rule == "AL10"
    moved = only(await ok(commands, event_log, to_ta, SO_NORTH), WorkItemAssigned)
    assert moved.reassigned and moved.item.state == "incomplete"
    assert (moved.item.owner_kind, moved.item.owner_id) == ("worker", _pos(TA_NORTH))
    work = await get(directory, TA_NORTH, f"/workers/{_pos(TA_NORTH)}/work")
    assert str(item_id) in {i["work_item_id"] for i in work["incomplete_work"]}


async def test_al14_not_for_other_steps_a_hub_worker_holds(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    """Triage a Hub Team worker started stays the Hub Team's to reassign (AL10)."""
    triage = await referral(commands, event_log, area="North")
    await ok(
        commands,
        event_log,
        AssignWork(
            person_id=triage.person_id,
            work_item_id=triage.work_item_id,
            to_position_id=_pos(HUB_1),
        ),
        SO_HUB,
    )
    await ok(
        commands,
        event_log,
        StartStep(person_id=triage.person_id, work_item_id=triage.work_item_id),
        HUB_1,
    )
    move = ReassignWork(
        person_id=triage.person_id, work_item_id=triage.work_item_id, to_position_id=_pos(TA_NORTH)
    )
    assert (await refused(commands, event_log, move, SO_NORTH)).rule == "AL10"


# --- AL13 / AL11: a Generic Support Officer resumes Case Monitoring ------------------------------


async def test_al13_al11_generic_support_officer_resumes_case_monitoring(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log, area="North")
    person = triage.person_id
    monitoring = await step(commands, event_log, person, StepType.CASE_MONITORING)
    start = StartStep(person_id=person, work_item_id=monitoring.work_item_id)
    in_inbox = only(await ok(commands, event_log, start, HUB_1), WorkItemStarted)
    assert in_inbox.item.owner_kind == "inbox"
    resume = ResumeStep(person_id=person, work_item_id=monitoring.work_item_id)
    # Attacks: not yet the person's Involved Worker; not a Generic Support Officer at all.
    assert (await refused(commands, event_log, resume, GSO_NORTH)).rule == "AL11"
    assert (await refused(commands, event_log, resume, TA_NORTH)).rule == "AL13"
    assert (await refused(commands, event_log, resume, SO_NORTH)).rule == "AL13"
    await _involved(commands, event_log, person, GSO_NORTH, SO_NORTH)
    resumed = only(await ok(commands, event_log, resume, GSO_NORTH), WorkItemResumed)
    assert (resumed.item.owner_kind, resumed.item.owner_id) == ("worker", _pos(GSO_NORTH))
    assert resumed.item.state == "incomplete"
    assert (resumed.from_owner.kind, resumed.from_owner.id) == ("inbox", in_inbox.item.owner_id)
    work = await get(directory, GSO_NORTH, "/me/work")
    assert str(monitoring.work_item_id) in {i["work_item_id"] for i in work["incomplete_work"]}
    history = await get(directory, SO_NORTH, f"/persons/{person}/history")
    assert "resumed" in [h["change"] for h in history["work_history"]]
    # Only Case Monitoring is resumed this way.
    resume_triage = ResumeStep(person_id=person, work_item_id=triage.work_item_id)
    assert (await refused(commands, event_log, resume_triage, GSO_NORTH)).rule == "AL13"


# --- AL13 with AL02: triage's next actions; AL15: its content in Documents ----------------------


async def test_al13_al15_finished_triage_sends_trusted_assessment_and_shows_in_documents(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log, area="South")
    person = triage.person_id
    sections = [
        DocumentSection(
            name="Initial risk assessment",
            answers=[DocumentAnswer(name="risks_identified", label="Risks", answer="Falls")],
        )
    ]
    finished = StepFinished(
        step_id=triage.work_item_id,
        person_id=person,
        step_type=StepType.TRIAGE.value,
        finished_by_position_id=_pos(HUB_1),
        next_actions=[
            NextAction(
                action_id=uuid.uuid4(),
                action_type=TRUSTED_ASSESSMENT_ACTION,
                assignee_kind="team",
                assignee_id=domain.SOUTH_TEAM,
                note="Assessment please",
            ),
            NextAction(
                action_id=uuid.uuid4(),
                action_type=CASE_MONITORING_ACTION,
                assignee_kind="team",
                assignee_id=domain.HUB_TEAM,
                note="Monitor meanwhile",
            ),
        ],
        sections=sections,
    )
    events = await reaction(commands, event_log, finished, Topics.SIGNOFF_EVENTS)
    assert only(events, WorkItemFinished).item.state == "finished"
    created = {
        WorkItemCreated.model_validate(e.payload).step_type: WorkItemCreated.model_validate(
            e.payload
        )
        for e in events
        if e.type == WorkItemCreated.TYPE
    }
    assessment = created[StepType.TRUSTED_ASSESSMENT]
    assert (assessment.owner_kind, assessment.owner_id) == ("team", domain.SOUTH_TEAM)  # AL02
    assert created[StepType.CASE_MONITORING].owner_id == domain.HUB_TEAM  # AL03
    south = await get(directory, SO_SOUTH, f"/teams/{domain.SOUTH_TEAM}/work")
    assert str(assessment.work_item_id) in {i["work_item_id"] for i in south["incoming_work"]}
    # AL15: the person's Documents show the finished triage with its sections and answers.
    record = await get(directory, SO_HUB, f"/persons/{person}")
    (document,) = [d for d in record["documents"] if d["work_item_id"] == str(triage.work_item_id)]
    assert document["sections"] == [s.model_dump(mode="json") for s in sections]
    assert str(triage.work_item_id) not in {i["work_item_id"] for i in record["current_work"]}


# --- SO10 / AL11: the Senior Officer is prompted to record the Involved Worker -------------------


async def test_so10_al11_sent_transfer_prompts_the_senior_officer_to_record_involved_worker(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log, area="North")
    person = triage.person_id

    def transfer() -> StepFinished:
        return StepFinished(
            step_id=uuid.uuid4(),
            person_id=person,
            step_type=StepType.TRUSTED_ASSESSMENT.value,
            finished_by_position_id=_pos(SO_MGMT),
            next_actions=[
                NextAction(
                    action_id=uuid.uuid4(),
                    action_type=TRANSFER_TO_SUPPORT_OFFICER,
                    assignee_kind="worker",
                    assignee_id=_pos(GSO_NORTH),
                    note="Please deliver",
                )
            ],
        )

    events = await reaction(commands, event_log, transfer(), Topics.SIGNOFF_EVENTS)
    delivery = only(events, WorkItemCreated)
    assert delivery.step_type is StepType.SUPPORT_PLAN_DELIVERY
    prompt = only(events, InvolvedWorkerPrompted)
    assert prompt.work_item_id == delivery.work_item_id
    assert (prompt.worker_position_id, prompt.worker_user_id) == (
        _pos(GSO_NORTH),
        GSO_NORTH.user_id,
    )
    assert prompt.senior_officer_user_id == SO_MGMT.user_id
    # Once recorded, a further transfer prompts nobody.
    await _involved(commands, event_log, person, GSO_NORTH, SO_NORTH)
    again = await reaction(commands, event_log, transfer(), Topics.SIGNOFF_EVENTS)
    assert not [e for e in again if e.type == InvolvedWorkerPrompted.TYPE]


# --- AL16: find a worker by name; the relationship type from a list ------------------------------


async def test_al16_find_worker_by_name_within_the_teams_one_allocates_for(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    name = f"Findable {uuid.uuid4().hex[:6]}"
    north_worker = await grant(commands, directory, domain.NORTH_TEAM, Role.TRUSTED_ASSESSOR)
    hub_worker = await grant(commands, directory, domain.HUB_TEAM, Role.HUB_TEAM_WORKER)
    # grant() names users "Worker <id>": find them by a part of that name, case-insensitively.
    found = await get(directory, SO_NORTH, "/workers", name=north_worker.user_id.upper())
    assert [w["position_id"] for w in found["workers"]] == [north_worker.position_id]
    assert found["workers"][0]["role"] == Role.TRUSTED_ASSESSOR.value
    # Scope (TR05, AL10): the North Senior Officer does not find the Hub Team's workers; the
    # Management Team's finds both.
    assert (await get(directory, SO_NORTH, "/workers", name=hub_worker.user_id))["workers"] == []
    both = await get(directory, SO_MGMT, "/workers", name="Worker u-")
    assert {north_worker.position_id, hub_worker.position_id} <= {
        w["position_id"] for w in both["workers"]
    }
    # Attacks: a worker who allocates nothing finds nobody (refused), and the wildcard is text.
    refusal = await directory.get(TA_NORTH.user_id, "/workers", name="Worker")
    assert refusal.status_code == 403 and refusal.json()["rule"] == "AL10"
    assert (await get(directory, SO_MGMT, "/workers", name="%"))["workers"] == []
    unsigned = await directory.http.get("/workers", params={"name": name})
    assert unsigned.status_code == 401


async def test_al16_relationship_type_is_chosen_from_the_list(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    listed = await get(directory, SO_NORTH, "/relationship-types")
    assert listed["relationship_types"] == [t.value for t in RelationshipType]
    assert "Involved Worker" in listed["relationship_types"]
    triage = await referral(commands, event_log)
    headers = await commands.users.headers(SO_NORTH.user_id)
    headers[POSITION_HEADER] = _pos(SO_NORTH)
    response = await commands.edge.post(
        f"/commands/{RecordWorkerRelationship.TYPE}",
        params={"wait": "false"},
        json={
            "person_id": triage.person_id,
            "worker_position_id": _pos(TA_NORTH),
            "relationship_type": "Best Friend",
        },
        headers=headers,
    )
    assert response.status_code == 400, response.text
    assert response.json()["problems"][0]["field"] == "relationship_type"


# --- AC23: a service request is completed from My service requests in its position ------------


async def test_ac23_service_request_completed_only_in_the_position_it_is_assigned_to(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    caseworker = await grant(commands, directory, APPEALS_TEAM, Role.CASEWORKER)
    # The same user's second position (the personal segment list view shows both).
    other_seat = await grant(
        commands,
        directory,
        APPEALS_TEAM,
        Role.CASEWORKER,
        kind=AccessKind.HIERARCHICAL,
        user_id=caseworker.user_id,
    )
    colleague = await grant(commands, directory, APPEALS_TEAM, Role.CASEWORKER)
    intake = ReceiveServiceRequest(
        person_id=f"P-{uuid.uuid4().hex[:8]}", person_name="Agency Customer", unit_id=APPEALS_TEAM
    )
    created = only(await ok(commands, event_log, intake, TL_APPEALS), WorkItemCreated)
    complete = CompleteServiceRequest(
        person_id=created.person_id, work_item_id=created.work_item_id
    )
    # Not from the hopper: nobody's My service requests yet.
    assert (await refused(commands, event_log, complete, TL_APPEALS)).rule == "AC23"
    assign = AssignWork(
        person_id=created.person_id,
        work_item_id=created.work_item_id,
        to_position_id=_pos(caseworker),
    )
    await ok(commands, event_log, assign, TL_APPEALS)
    # Attacks: the same user acting in their other position, a colleague, the team leader.
    for attacker in (other_seat, colleague, TL_APPEALS):
        assert (await refused(commands, event_log, complete, attacker)).rule == "AC23"
    done = only(await ok(commands, event_log, complete, caseworker), ServiceRequestCompleted)
    assert done.item.state == "finished"
    assert (done.item.owner_kind, done.item.owner_id) == ("worker", _pos(caseworker))
    assert (await get(directory, TL_APPEALS, f"/work-items/{created.work_item_id}"))[
        "state"
    ] == "finished"
    mine = await get(directory, caseworker, "/me/work")
    assert str(created.work_item_id) not in {
        i["work_item_id"] for i in mine["incoming_work"] + mine["incomplete_work"]
    }
    assert (await refused(commands, event_log, complete, caseworker)).rule == "AC23"  # once
    # A Wellbeing step is finished through its form, never completed as a service request.
    triage = await referral(commands, event_log)
    step_complete = CompleteServiceRequest(
        person_id=triage.person_id, work_item_id=triage.work_item_id
    )
    assert (await refused(commands, event_log, step_complete, SO_HUB)).rule == "AC23"
