"""Screening, assigning, reassigning and re-prioritising (AL01-AL07, AL09, AL10), over the real
broker and database."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from contracts import Actor, Topics
from contracts.access import Role
from contracts.allocation import (
    AmendWorkerRelationship,
    AssignWork,
    BulkAssignPreviewed,
    ChangePriority,
    CreateStep,
    PreviewBulkAssign,
    Priority,
    ReassignWork,
    ReceiveServiceRequest,
    RecordWorkerRelationship,
    StartStep,
    StepType,
    WorkerRelationshipRecorded,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemPriorityChanged,
    WorkItemStarted,
)
from contracts.signoff import RequestCompleted, RequestSent
from services.allocation import domain
from tests.allocation.helpers import (
    GSO_NORTH,
    HUB_1,
    HUB_2,
    SO_HUB,
    SO_MGMT,
    SO_NORTH,
    SO_SOUTH,
    TA_NORTH,
    get,
    grant,
    new_person,
    ok,
    only,
    publish,
    referral,
    refused,
    step,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

GSO = GSO_NORTH.position_id or ""
# The benefits agency, from the walkthrough directory.
APPEALS_TEAM, APPEALS_HOPPER = "team-appeals-1", "hopper-team-appeals-1"
TL_APPEALS = Actor(user_id="tl-appeals-1", position_id="pos-tl-appeals-1")
CW_APPEALS = Actor(user_id="cw-appeals-1", position_id="pos-cw-appeals-1")
OPS_DIRECTOR = Actor(user_id="ops-director", position_id="pos-ops-director")  # root segment


def _ids(items: list[dict[str, str]]) -> set[str]:
    return {i["work_item_id"] for i in items}


async def test_al01_referral_lands_in_hub_team_incoming_work(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    created = await referral(commands, event_log, name="Alice Referral")
    assert (created.owner_kind, created.owner_id) == ("team", domain.HUB_TEAM)
    assert created.step_type is StepType.TRIAGE and created.state == "incoming"
    work = await get(directory, SO_HUB, f"/teams/{domain.HUB_TEAM}/work")
    assert str(created.work_item_id) in _ids(work["incoming_work"])


async def test_al02_trusted_assessment_goes_to_the_area_team(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    north = await referral(commands, event_log, area="North")
    south = await referral(commands, event_log, area="South")
    to_north = await step(commands, event_log, north.person_id, StepType.TRUSTED_ASSESSMENT)
    to_south = await step(commands, event_log, south.person_id, StepType.TRUSTED_ASSESSMENT)
    assert (to_north.owner_id, to_south.owner_id) == (domain.NORTH_TEAM, domain.SOUTH_TEAM)
    # No area known and none given: refused naming AL02.
    rejection = await refused(
        commands,
        event_log,
        CreateStep(person_id=new_person(), step_type=StepType.TRUSTED_ASSESSMENT),
        SO_HUB,
    )
    assert rejection.rule == "AL02"


async def test_al10_a_step_is_created_only_by_one_who_screens_its_team(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    """AL10: a Trusted Assessor or a South Team Senior Officer may not create a step for the
    North Team (the North Team's and the Hub Team's Senior Officers may); nothing is created."""
    person = (await referral(commands, event_log, area="North")).person_id
    attack = CreateStep(person_id=person, step_type=StepType.TRUSTED_ASSESSMENT)
    for attacker in (TA_NORTH, SO_SOUTH, TL_APPEALS):
        assert (await refused(commands, event_log, attack, attacker)).rule == "AL10"
    created = await step(commands, event_log, person, StepType.TRUSTED_ASSESSMENT)
    assert created.owner_id == domain.NORTH_TEAM


async def test_al03_case_monitoring_is_hub_incoming_then_inbox_incomplete(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log, area="South")
    monitoring = await step(commands, event_log, triage.person_id, StepType.CASE_MONITORING)
    assert (monitoring.owner_id, monitoring.state) == (domain.HUB_TEAM, "incoming")
    again = CreateStep(
        person_id=triage.person_id,
        step_type=StepType.CASE_MONITORING,
        work_item_id=monitoring.work_item_id,
    )
    assert (await refused(commands, event_log, again, SO_HUB)).rule == "AL03"  # created once
    start = StartStep(person_id=triage.person_id, work_item_id=monitoring.work_item_id)
    # Only a member of the Hub Team starts its incoming work.
    assert (await refused(commands, event_log, start, TA_NORTH)).rule == "AL03"
    started = only(await ok(commands, event_log, start, HUB_1), WorkItemStarted)
    inbox = domain.CASE_MONITORING_INBOXES[domain.Area.SOUTH]
    assert (started.item.owner_kind, started.item.owner_id) == ("inbox", inbox)
    assert started.item.state == "incomplete"
    assert (await refused(commands, event_log, start, HUB_1)).rule == "AL03"  # started already
    inbox_work = await get(directory, SO_SOUTH, f"/queues/inbox/{inbox}/work")
    assert str(monitoring.work_item_id) in _ids(inbox_work["incomplete_work"])
    team = await get(directory, SO_SOUTH, f"/teams/{domain.SOUTH_TEAM}")
    assert any(i["inbox"] == inbox and i["incomplete"] >= 1 for i in team["inboxes"])


async def test_al04_team_summary_workview_and_incoming_requests(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log, name="Rita Request")
    assessment = await step(commands, event_log, triage.person_id, StepType.TRUSTED_ASSESSMENT)
    sent = RequestSent(
        request_id=uuid.uuid4(),
        step_id=assessment.work_item_id,
        person_id=triage.person_id,
        title="WB Transfer to Senior Officer to review information and add additional next "
        "actions - WB Trusted Assessment and Support Planning",
        team=domain.MANAGEMENT_TEAM,
        sent_by_position_id=TA_NORTH.position_id,
    )
    await event_log.outcome((await publish(commands, sent, Topics.SIGNOFF_EVENTS)).message_id)
    work = await get(directory, SO_MGMT, f"/teams/{domain.MANAGEMENT_TEAM}/work")
    (request,) = [r for r in work["incoming_requests"] if r["request_id"] == str(sent.request_id)]
    assert request["person_name"] == "Rita Request" and request["title"] == sent.title

    summary = await get(directory, SO_MGMT, "/teams")
    teams = {t["unit_id"]: t for t in summary["teams"]}
    assert set(domain.TEAMS) <= set(teams)
    assert teams[domain.MANAGEMENT_TEAM]["incoming_requests"] >= 1
    assert teams[domain.NORTH_TEAM]["incoming"] >= 1
    north = await get(directory, SO_NORTH, f"/teams/{domain.NORTH_TEAM}")
    assert {"Nadia Byrne", "Grace Mensah", "Lucy Ward"} <= {w["name"] for w in north["workers"]}

    done = RequestCompleted(
        request_id=sent.request_id, step_id=assessment.work_item_id, person_id=triage.person_id
    )
    await event_log.outcome((await publish(commands, done, Topics.SIGNOFF_EVENTS)).message_id)
    work = await get(directory, SO_MGMT, f"/teams/{domain.MANAGEMENT_TEAM}/work")
    assert str(sent.request_id) not in {r["request_id"] for r in work["incoming_requests"]}

    record = await get(directory, SO_HUB, f"/persons/{triage.person_id}")
    assert {i["step_type"] for i in record["current_work"]} == {
        StepType.TRIAGE,
        StepType.TRUSTED_ASSESSMENT,
    }
    assert record["documents"] == []


async def test_al05_trusted_assessor_needs_involved_worker(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log)
    assessment = await step(commands, event_log, triage.person_id, StepType.TRUSTED_ASSESSMENT)
    assign = AssignWork(
        person_id=triage.person_id,
        work_item_id=assessment.work_item_id,
        to_position_id=TA_NORTH.position_id or "",
    )
    assert (await refused(commands, event_log, assign, SO_NORTH)).rule == "AL05"
    # A relationship for another worker does not count.
    await ok(
        commands,
        event_log,
        RecordWorkerRelationship(person_id=triage.person_id, worker_position_id=GSO),
        SO_NORTH,
    )
    assert (await refused(commands, event_log, assign, SO_NORTH)).rule == "AL05"


async def test_al05_involved_worker_must_be_in_force_and_is_amendable(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log)
    assessment = await step(commands, event_log, triage.person_id, StepType.TRUSTED_ASSESSMENT)
    today = date.today()
    future = only(
        await ok(
            commands,
            event_log,
            RecordWorkerRelationship(
                person_id=triage.person_id,
                worker_position_id=GSO,
                from_date=today + timedelta(days=7),
            ),
            SO_NORTH,
        ),
        WorkerRelationshipRecorded,
    )
    assign = AssignWork(
        person_id=triage.person_id, work_item_id=assessment.work_item_id, to_position_id=GSO
    )
    assert (await refused(commands, event_log, assign, SO_NORTH)).rule == "AL05"
    bad_end = AmendWorkerRelationship(
        person_id=triage.person_id,
        relationship_id=future.relationship_id,
        end_date=today + timedelta(days=1),
    )
    assert (await refused(commands, event_log, bad_end, SO_NORTH)).rule == "AL05"
    amended = only(
        await ok(
            commands,
            event_log,
            AmendWorkerRelationship(
                person_id=triage.person_id, relationship_id=future.relationship_id, from_date=today
            ),
            SO_NORTH,
        ),
        WorkerRelationshipRecorded,
    )
    assert amended.amended and amended.from_date == today
    # Recording the same relationship again is refused: it is amended, not recorded twice.
    twice = RecordWorkerRelationship(
        person_id=triage.person_id,
        worker_position_id=GSO,
        relationship_id=future.relationship_id,
    )
    assert (await refused(commands, event_log, twice, SO_NORTH)).rule == "AL05"
    await ok(commands, event_log, assign, SO_NORTH)


async def test_al05_not_needed_for_triage_to_a_hub_worker(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log)
    assign = AssignWork(
        person_id=triage.person_id,
        work_item_id=triage.work_item_id,
        to_position_id=HUB_1.position_id or "",
    )
    assigned = only(await ok(commands, event_log, assign, SO_HUB), WorkItemAssigned)
    assert assigned.item.owner_id == HUB_1.position_id


async def test_al06_pass_to_worker_moves_incoming_work_with_the_note(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log)
    assign = AssignWork(
        person_id=triage.person_id,
        work_item_id=triage.work_item_id,
        to_position_id="pos-hub-2",
        note="new referral",
    )
    assigned = only(await ok(commands, event_log, assign, SO_HUB), WorkItemAssigned)
    assert (assigned.item.state, assigned.item.owner_user_id, assigned.note) == (
        "incoming",
        "hub-2",
        "new referral",
    )
    assert assigned.from_owner.id == domain.HUB_TEAM and not assigned.reassigned
    item = await get(directory, SO_HUB, f"/work-items/{triage.work_item_id}")
    assert [n["note"] for n in item["notes"]] == ["new referral"]
    hub2 = await get(directory, SO_HUB, "/workers/pos-hub-2/work")
    assert str(triage.work_item_id) in _ids(hub2["incoming_work"])
    # Again to the same worker, or to a position nobody holds: refused.
    assert (await refused(commands, event_log, assign, SO_HUB)).rule == "AL06"
    nobody = assign.model_copy(update={"to_position_id": "pos-nobody"})
    assert (await refused(commands, event_log, nobody, SO_HUB)).rule == "AL06"


async def test_al07_priority_changes_from_team_work_not_from_the_record(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log)
    from_record = AssignWork(
        person_id=triage.person_id,
        work_item_id=triage.work_item_id,
        to_position_id=HUB_1.position_id or "",
        priority=Priority.URGENT,
        from_record=True,
    )
    assert (await refused(commands, event_log, from_record, SO_HUB)).rule == "AL07"
    kept = only(
        await ok(commands, event_log, from_record.model_copy(update={"priority": None}), SO_HUB),
        WorkItemAssigned,
    )
    assert kept.item.priority == "normal" and kept.previous_priority is None
    change = ChangePriority(
        person_id=triage.person_id, work_item_id=triage.work_item_id, priority=Priority.URGENT
    )
    changed = only(await ok(commands, event_log, change, SO_HUB), WorkItemPriorityChanged)
    assert (changed.previous_priority, changed.item.priority) == ("normal", "urgent")
    assert (await refused(commands, event_log, change, SO_HUB)).rule == "AL07"  # unchanged
    history = (await get(directory, SO_HUB, f"/persons/{triage.person_id}/history"))["work_history"]
    assert history[-1]["change"] == "priority changed"
    assert history[-1]["detail"] == {"priority_from": "normal", "priority_to": "urgent"}


async def test_al09_reassign_started_work_to_the_workers_incomplete_work(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log)
    to_hub1 = AssignWork(
        person_id=triage.person_id,
        work_item_id=triage.work_item_id,
        to_position_id=HUB_1.position_id or "",
    )
    await ok(commands, event_log, to_hub1, SO_HUB)
    reassign = ReassignWork(
        person_id=triage.person_id, work_item_id=triage.work_item_id, to_position_id="pos-hub-2"
    )
    # Not started yet: reassigning is for started work.
    assert (await refused(commands, event_log, reassign, SO_HUB)).rule == "AL09"
    start = StartStep(person_id=triage.person_id, work_item_id=triage.work_item_id)
    await ok(commands, event_log, start, HUB_1)
    moved = only(await ok(commands, event_log, reassign, SO_HUB), WorkItemAssigned)
    assert moved.reassigned and moved.item.state == "incomplete"
    assert moved.from_owner.id == HUB_1.position_id and moved.item.owner_id == "pos-hub-2"
    hub2 = await get(directory, HUB_2, "/workers/pos-hub-2/work")  # their own work
    assert str(triage.work_item_id) in _ids(hub2["incomplete_work"])


async def test_al10_only_senior_officer_or_team_leader_of_owning_or_management_team(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    triage = await referral(commands, event_log)
    assign = AssignWork(
        person_id=triage.person_id,
        work_item_id=triage.work_item_id,
        to_position_id=HUB_1.position_id or "",
    )
    # A Hub worker is in the team but no allocator; the South Senior Officer is not in the team.
    assert (await refused(commands, event_log, assign, HUB_1)).rule == "AL10"
    assert (await refused(commands, event_log, assign, SO_SOUTH)).rule == "AL10"
    # Claiming a position the user does not hold is refused too.
    impostor = SO_HUB.model_copy(update={"user_id": "so-south"})
    assert (await refused(commands, event_log, assign, impostor)).rule == "AL10"
    change = ChangePriority(
        person_id=triage.person_id, work_item_id=triage.work_item_id, priority=Priority.HIGH
    )
    assert (await refused(commands, event_log, change, SO_NORTH)).rule == "AL10"
    # A team leader in a secondary position of the team may; so may the Management Team.
    tl = await grant(commands, directory, domain.HUB_TEAM, Role.TEAM_LEADER)
    await ok(commands, event_log, change, tl)
    assigned = only(await ok(commands, event_log, assign, SO_MGMT), WorkItemAssigned)
    assert assigned.item.acting_user_id == SO_MGMT.user_id


async def test_al10_management_team_cannot_act_on_the_other_organisations_appeals_hopper(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    """AL10 across organisations: the council's Management Team acts on the Wellbeing teams'
    work only; the benefits agency's Appeals hopper is another organisation's, and neither
    side's positions give rights over the other's units."""
    intake = ReceiveServiceRequest(
        person_id=new_person(), person_name="Agency Appellant", unit_id=APPEALS_TEAM
    )
    created = only(await ok(commands, event_log, intake, TL_APPEALS), WorkItemCreated)
    assert (created.owner_kind, created.owner_id) == ("hopper", APPEALS_HOPPER)
    assign = AssignWork(
        person_id=created.person_id,
        work_item_id=created.work_item_id,
        to_position_id=CW_APPEALS.position_id or "",
    )
    refusal = await refused(commands, event_log, assign, SO_MGMT)
    assert refusal.rule == "AL10" and "another organisation" in refusal.reason
    change = ChangePriority(
        person_id=created.person_id, work_item_id=created.work_item_id, priority=Priority.HIGH
    )
    assert (await refused(commands, event_log, change, SO_MGMT)).rule == "AL10"
    preview = PreviewBulkAssign(
        work_item_ids=[created.work_item_id], to_position_id=CW_APPEALS.position_id or ""
    )
    (outcome,) = only(await ok(commands, event_log, preview, SO_MGMT), BulkAssignPreviewed).outcomes
    assert (outcome.ok, outcome.rule) == (False, "AL10")
    # Nor the other way round: the agency's root segment manager has no rights over the
    # Wellbeing teams' work.
    triage = await referral(commands, event_log)
    to_hub = AssignWork(
        person_id=triage.person_id,
        work_item_id=triage.work_item_id,
        to_position_id=HUB_1.position_id or "",
    )
    assert (await refused(commands, event_log, to_hub, OPS_DIRECTOR)).rule == "AL10"
    # The Appeals team leader, inside the agency, may.
    assigned = only(await ok(commands, event_log, assign, TL_APPEALS), WorkItemAssigned)
    assert assigned.item.owner_id == CW_APPEALS.position_id
