"""Moving work without a chosen assignee: an absent caseworker's cases (AC07), absence-related
access and the segment hopper (AC19), and releasing a removed position's work (AC16)."""

from __future__ import annotations

import uuid

from contracts import Topics
from contracts.access import AccessKind, PositionReleaseRequested, PositionRevoked, Role
from contracts.allocation import (
    AbsentCaseworkerWorkMoved,
    AbsentCaseworkerWorkMovedV2,
    AssignWork,
    MoveAbsentCaseworkerWork,
    PositionWorkReleased,
    PositionWorkReleaseFailed,
    ReceiveServiceRequest,
    SendToSegmentHopper,
    StepType,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemMoved,
    WorkItemMovedV2,
)
from services.allocation import domain
from tests.allocation.helpers import (
    CW_ENF_1,
    CW_ENF_3,
    SO_HUB,
    TL_ENF_1,
    TL_ENF_2,
    get,
    grant,
    new_person,
    next_action_work,
    ok,
    only,
    reaction,
    refused,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

TEAM_A, TEAM_B = "team-enf-1", "team-enf-2"
HOPPER_A, SEGMENT_HOPPER = "hopper-team-enf-1", "hopper-seg-enforcement"
CW_3 = CW_ENF_3.position_id or ""  # a caseworker of team 2


async def test_ac07_team_leader_moves_absent_caseworkers_cases(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    absent = await grant(commands, directory, TEAM_A, Role.CASEWORKER)
    other = await grant(commands, directory, TEAM_A, Role.CASEWORKER)
    assert absent.position_id and other.position_id
    first = await next_action_work(commands, event_log, new_person(), "worker", absent.position_id)
    second = await next_action_work(commands, event_log, new_person(), "worker", absent.position_id)
    to_other = MoveAbsentCaseworkerWork(
        from_position_id=absent.position_id, to_position_id=other.position_id, note="on leave"
    )
    # Only a team leader of the caseworker's team, and only to a caseworker of that team.
    assert (await refused(commands, event_log, to_other, TL_ENF_2)).rule == "AC07"
    assert (await refused(commands, event_log, to_other, CW_ENF_1)).rule == "AC07"
    elsewhere = to_other.model_copy(update={"to_position_id": CW_3})
    assert (await refused(commands, event_log, elsewhere, TL_ENF_1)).rule == "AC07"

    events = await ok(commands, event_log, to_other, TL_ENF_1)
    summary = only(events, AbsentCaseworkerWorkMoved)
    assert {s.work_item_id for s in summary.moved} == {first.work_item_id, second.work_item_id}
    assert {(s.owner_id, s.owner_user_id) for s in summary.moved} == {
        (other.position_id, other.user_id)
    }
    assert {e.type for e in events} == {
        WorkItemMoved.TYPE,
        AbsentCaseworkerWorkMoved.TYPE,
        WorkItemMovedV2.TYPE,  # each v1 type is published beside its v2
        AbsentCaseworkerWorkMovedV2.TYPE,
    }
    items_v2 = only(events, AbsentCaseworkerWorkMovedV2).items
    assert [i.model_dump() for i in items_v2] == [s.model_dump() for s in summary.moved]

    # Or to the team hopper.
    to_hopper = MoveAbsentCaseworkerWork(from_position_id=other.position_id)
    back = only(await ok(commands, event_log, to_hopper, TL_ENF_1), AbsentCaseworkerWorkMoved)
    assert (back.to_owner.kind, back.to_owner.id) == ("hopper", HOPPER_A)
    hopper = await get(directory, TL_ENF_1, f"/queues/hopper/{HOPPER_A}/work")
    assert {str(first.work_item_id), str(second.work_item_id)} <= {
        i["work_item_id"] for i in hopper["incoming_work"]
    }


async def test_ac19_absence_access_assigns_hopper_work_only_to_that_teams_caseworkers(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    # The team leader of team 2 covers team 1 with absence-related access.
    absence = await grant(
        commands, directory, TEAM_A, Role.TEAM_LEADER, AccessKind.ABSENCE, TL_ENF_2.user_id
    )
    in_a = await next_action_work(commands, event_log, new_person(), "team", TEAM_A)
    in_b = await next_action_work(commands, event_log, new_person(), "team", TEAM_B)
    assert (in_a.owner_kind, in_a.owner_id) == ("hopper", HOPPER_A)
    to_b1 = AssignWork(
        person_id=in_a.person_id, work_item_id=in_a.work_item_id, to_position_id=CW_3
    )
    # From the absence-related position in team A: only to team A's caseworkers...
    assert (await refused(commands, event_log, to_b1, absence)).rule == "AC19"
    # ...and only team A's work.
    other_team = AssignWork(
        person_id=in_b.person_id, work_item_id=in_b.work_item_id, to_position_id=CW_3
    )
    assert (await refused(commands, event_log, other_team, absence)).rule == "AC19"
    to_a1 = to_b1.model_copy(update={"to_position_id": CW_ENF_1.position_id})
    assigned = only(await ok(commands, event_log, to_a1, absence), WorkItemAssigned)
    assert assigned.item.owner_unit_id == TEAM_A

    # Moving the case to team B: back to the segment hopper first, then from the primary
    # position to team B's caseworker.
    send_back = SendToSegmentHopper(person_id=in_a.person_id, work_item_id=in_a.work_item_id)
    moved = only(await ok(commands, event_log, send_back, absence), WorkItemMoved)
    assert (moved.rule, moved.item.owner_id) == ("AC19", SEGMENT_HOPPER)
    reassigned = only(await ok(commands, event_log, to_b1, TL_ENF_2), WorkItemAssigned)
    assert reassigned.item.owner_id == CW_3
    assert reassigned.from_owner.id == SEGMENT_HOPPER


async def test_ac19_service_request_enters_its_teams_hopper_and_the_tl_assigns_it(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    person = new_person()
    intake = ReceiveServiceRequest(
        person_id=person, person_name="Agency Customer", unit_id=TEAM_A, description="Appeal"
    )
    created = only(await ok(commands, event_log, intake, TL_ENF_1), WorkItemCreated)
    assert (created.owner_kind, created.owner_id) == ("hopper", HOPPER_A)
    assert created.step_type is StepType.SERVICE_REQUEST
    assign = AssignWork(
        person_id=person, work_item_id=created.work_item_id, to_position_id=CW_ENF_1.position_id
    )
    assigned = only(await ok(commands, event_log, assign, TL_ENF_1), WorkItemAssigned)
    assert assigned.item.owner_id == CW_ENF_1.position_id

    nowhere = intake.model_copy(update={"person_id": new_person(), "unit_id": "team-nowhere"})
    assert (await refused(commands, event_log, nowhere, TL_ENF_1)).rule == "AC19"


async def test_ac16_release_moves_held_work_to_the_hopper_and_confirms(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    leaving = await grant(commands, directory, TEAM_A, Role.CASEWORKER)
    assert leaving.position_id
    items = [
        await next_action_work(commands, event_log, new_person(), "worker", leaving.position_id)
        for _ in range(2)
    ]
    request = PositionReleaseRequested(
        release_id=uuid.uuid4(), user_id=leaving.user_id, position_id=leaving.position_id
    )
    events = await reaction(commands, event_log, request, Topics.ACCESS_EVENTS)
    released = only(events, PositionWorkReleased)
    assert released.release_id == request.release_id
    assert {(m.work_item_id, m.to_owner.kind, m.to_owner.id) for m in released.moved} == {
        (i.work_item_id, "hopper", HOPPER_A) for i in items
    }
    assert len([e for e in events if e.type == WorkItemMoved.TYPE]) == 2
    held = await get(directory, TL_ENF_1, f"/workers/{leaving.position_id}/work")
    assert held["incoming_work"] == [] and held["incomplete_work"] == []


async def test_ac16_release_to_successor_or_fail_naming_the_reason(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    leaving = await grant(commands, directory, domain.NORTH_TEAM, Role.TRUSTED_ASSESSOR)
    successor = await grant(commands, directory, domain.NORTH_TEAM, Role.TRUSTED_ASSESSOR)
    assert leaving.position_id and successor.position_id
    item = await next_action_work(commands, event_log, new_person(), "worker", leaving.position_id)
    unknown = PositionReleaseRequested(
        release_id=uuid.uuid4(),
        user_id=leaving.user_id,
        position_id=leaving.position_id,
        successor_position_id="pos-nobody",
    )
    failed = only(
        await reaction(commands, event_log, unknown, Topics.ACCESS_EVENTS),
        PositionWorkReleaseFailed,
    )
    assert "pos-nobody" in failed.reason and failed.release_id == unknown.release_id
    still = await get(directory, leaving, f"/workers/{leaving.position_id}/work")
    assert [i["work_item_id"] for i in still["incoming_work"]] == [str(item.work_item_id)]

    to_successor = unknown.model_copy(
        update={"release_id": uuid.uuid4(), "successor_position_id": successor.position_id}
    )
    released = only(
        await reaction(commands, event_log, to_successor, Topics.ACCESS_EVENTS),
        PositionWorkReleased,
    )
    assert [(m.work_item_id, m.to_owner.id) for m in released.moved] == [
        (item.work_item_id, successor.position_id)
    ]


async def test_ac16_a_revoked_position_can_neither_keep_nor_receive_work(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    revoked = await grant(commands, directory, domain.HUB_TEAM, Role.HUB_TEAM_WORKER)
    assert revoked.position_id
    item = await next_action_work(commands, event_log, new_person(), "worker", revoked.position_id)
    # The revocation arrives while work is still held (no saga ran): the work goes back.
    revocation = PositionRevoked(user_id=revoked.user_id, position_id=revoked.position_id)
    moved = only(
        await reaction(commands, event_log, revocation, Topics.ACCESS_EVENTS),
        WorkItemMoved,
    )
    assert (moved.rule, moved.item.owner_kind, moved.item.owner_id) == (
        "AC16",
        "team",
        domain.HUB_TEAM,
    )
    assign = AssignWork(
        person_id=item.person_id,
        work_item_id=item.work_item_id,
        to_position_id=revoked.position_id,
    )
    assert (await refused(commands, event_log, assign, SO_HUB)).rule == "AC16"
