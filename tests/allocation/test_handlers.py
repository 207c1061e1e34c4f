"""Each handler module's rules on the fake transaction and fake repositories: no broker, no
database (`HandlerContext.for_message` gives a connection that fails any statement)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from contracts import Actor, Message
from contracts.access import AccessKind, PositionReleaseRequested, Role
from contracts.allocation import (
    AbsentCaseworkerWorkMoved,
    AbsentCaseworkerWorkMovedV2,
    AssignWork,
    BulkAssign,
    BulkAssigned,
    ChangePriority,
    CreateStep,
    MoveAbsentCaseworkerWork,
    PositionWorkReleased,
    PositionWorkReleasedV2,
    Priority,
    ReceiveReferral,
    RecordWorkerRelationship,
    StartStep,
    StepType,
    WorkItemAssigned,
    WorkItemAssignedV2,
    WorkItemCreated,
    WorkItemCreatedV2,
    WorkItemFinishedV2,
    WorkItemReturnedV2,
    WorkState,
)
from contracts.signoff import NextAction, RequestReturned, StepFinished
from services.allocation import domain
from services.allocation.domain import Unit, WorkItem
from services.allocation.handlers import (
    assigning,
    bulk,
    intake,
    moves,
    relationships,
    signoff_outcomes,
)
from services.allocation.repository import Person
from services.shared.positions import Position
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext
from tests.allocation.fakes import FakePeople, FakeWorkItems, fake_repositories

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PERSON = "P-1"


def _position(pid: str, unit: str, role: Role, kind: AccessKind = AccessKind.PRIMARY) -> Position:
    return Position(pid, f"user-{pid}", unit, role.value, kind.value, False)


SO_HUB = _position("so-hub", domain.HUB_TEAM, Role.SENIOR_OFFICER)
HUB_1 = _position("hub-1", domain.HUB_TEAM, Role.HUB_TEAM_WORKER)
TA_NORTH = _position("ta-north", domain.NORTH_TEAM, Role.TRUSTED_ASSESSOR)
SO_NORTH = _position("so-north", domain.NORTH_TEAM, Role.SENIOR_OFFICER)
TL_A = _position("tl-a", "team-a", Role.TEAM_LEADER)
CW_A1 = _position("cw-a1", "team-a", Role.CASEWORKER)
CW_A2 = _position("cw-a2", "team-a", Role.CASEWORKER)
UNITS = [
    *(Unit(team, "team") for team in domain.TEAMS),
    Unit("segment-a", "segment", None, "hopper-seg-a"),
    Unit("team-a", "team", "segment-a", "hopper-a"),
]
POSITIONS = [SO_HUB, HUB_1, TA_NORTH, SO_NORTH, TL_A, CW_A1, CW_A2]


def _as(position: Position) -> Actor:
    return Actor(user_id=position.user_id, position_id=position.position_id)


def _item(
    owner: tuple[str, str] = ("team", domain.HUB_TEAM),
    step: StepType = StepType.TRIAGE,
    state: WorkState = WorkState.INCOMING,
) -> WorkItem:
    return WorkItem(uuid.uuid4(), PERSON, step, state, owner[0], owner[1], "normal")


def _world(*items: WorkItem) -> tuple[Any, FakeWorkItems, FakePeople]:
    repos, store, people = fake_repositories(POSITIONS, UNITS)
    for item in items:
        store.items[item.work_item_id] = item
    people.people[PERSON] = Person(PERSON, "Ada Lovelace", "North")
    return repos, store, people


async def _run(handler: Any, message: Message, by: Position | None, repos: Any) -> list[Any]:
    ctx = HandlerContext.for_message(message, now=NOW, actor=_as(by) if by else None)
    await handler(ctx, repos)
    return ctx.events


def _rule(call: Any) -> str:
    assert isinstance(call.value, RuleViolation)
    return call.value.rule


# --- intake ---------------------------------------------------------------------------------


async def test_al01_referral_is_hub_triage_published_v1_then_v2() -> None:
    repos, store, _ = _world()
    cmd = ReceiveReferral(person_id="P-9", person_name="Mary", area="North")
    v1, v2 = await _run(intake.receive_referral, cmd, SO_HUB, repos)
    assert isinstance(v1, WorkItemCreated) and isinstance(v2, WorkItemCreatedV2)
    (item,) = v2.items
    assert (item.owner_kind, item.owner_id, item.owner_unit_id) == (
        "team",
        domain.HUB_TEAM,
        domain.HUB_TEAM,
    )
    assert (v1.work_item_id, v1.owner_id) == (item.work_item_id, item.owner_id)
    assert store.history == [(item.work_item_id, "created", {"step_type": StepType.TRIAGE.value})]


async def test_al10_create_step_is_refused_to_a_worker_and_another_organisation() -> None:
    """AL10: creating a step is screening: a Trusted Assessor, or a team leader of the agency,
    may not create a Wellbeing step; the North Team's and the Hub Team's Senior Officers may."""
    cmd = CreateStep(person_id=PERSON, step_type=StepType.TRUSTED_ASSESSMENT)
    for attacker in (TA_NORTH, TL_A, None):
        repos, store, _ = _world()
        with pytest.raises(RuleViolation) as refused:
            await _run(intake.create_step, cmd, attacker, repos)
        assert _rule(refused) == "AL10" and store.items == {}
    for officer in (SO_NORTH, SO_HUB):
        repos, store, _ = _world()
        _, created = await _run(intake.create_step, cmd, officer, repos)
        assert created.items[0].owner_id == domain.NORTH_TEAM  # AL02: the person's area


async def test_al03_only_a_member_of_the_team_starts_its_incoming_work() -> None:
    triage = _item()
    repos, store, _ = _world(triage)
    start = StartStep(person_id=PERSON, work_item_id=triage.work_item_id)
    with pytest.raises(RuleViolation) as refused:
        await _run(intake.start_step, start, TA_NORTH, repos)
    assert _rule(refused) == "AL03" and store.history == []
    _, started = await _run(intake.start_step, start, HUB_1, repos)
    assert (started.items[0].state, started.items[0].owner_id) == ("incomplete", "hub-1")
    assert store.items[triage.work_item_id].state is WorkState.INCOMPLETE


# --- assigning ------------------------------------------------------------------------------


async def test_al05_assigning_to_a_trusted_assessor_needs_involved_worker() -> None:
    step = _item(("team", domain.NORTH_TEAM), StepType.TRUSTED_ASSESSMENT)
    repos, store, people = _world(step)
    cmd = AssignWork(person_id=PERSON, work_item_id=step.work_item_id, to_position_id="ta-north")
    with pytest.raises(RuleViolation) as refused:
        await _run(assigning.assign_work, cmd, SO_NORTH, repos)
    assert _rule(refused) == "AL05" and store.history == []
    people.rels[PERSON] = [
        domain.Relationship(TA_NORTH.user_id, "Involved Worker", NOW.date(), None)
    ]
    v1, v2 = await _run(assigning.assign_work, cmd, SO_NORTH, repos)
    assert isinstance(v1, WorkItemAssigned) and isinstance(v2, WorkItemAssignedV2)
    assert v2.items[0].owner_user_id == TA_NORTH.user_id
    assert [o.id for o in v2.from_owners] == [domain.NORTH_TEAM]


async def test_al06_al07_al12_assignment_writes_history_note_and_priority() -> None:
    triage = _item()
    repos, store, _ = _world(triage)
    cmd = AssignWork(
        person_id=PERSON,
        work_item_id=triage.work_item_id,
        to_position_id="hub-1",
        note="today",
        priority=Priority.HIGH,
    )
    await _run(assigning.assign_work, cmd, SO_HUB, repos)
    after = store.items[triage.work_item_id]
    assert (after.owner_kind, after.owner_id, after.priority) == ("worker", "hub-1", "high")
    assert store.notes[triage.work_item_id] == ["today"]
    assert store.history == [
        (
            triage.work_item_id,
            "assigned",
            {
                "note": "today",
                "priority_from": "normal",
                "priority_to": "high",
                "by_position_id": "so-hub",
            },
        )
    ]


async def test_al10_priority_changed_only_by_an_allocator_of_the_owning_team() -> None:
    triage = _item()
    repos, store, _ = _world(triage)
    cmd = ChangePriority(person_id=PERSON, work_item_id=triage.work_item_id, priority=Priority.LOW)
    for outsider in (HUB_1, SO_NORTH):
        with pytest.raises(RuleViolation) as refused:
            await _run(assigning.change_priority, cmd, outsider, repos)
        assert _rule(refused) == "AL10"
    assert store.history == []


# --- bulk -----------------------------------------------------------------------------------


async def test_al08_bulk_assign_is_all_or_none_then_one_event_for_all() -> None:
    ours, theirs = _item(("hopper", "hopper-a")), _item(("team", domain.NORTH_TEAM))
    repos, store, _ = _world(ours, theirs)
    both = BulkAssign(
        work_item_ids=[ours.work_item_id, theirs.work_item_id], to_position_id="cw-a1"
    )
    with pytest.raises(RuleViolation) as refused:
        await _run(bulk.bulk_assign, both, TL_A, repos)
    assert _rule(refused) == "AL08" and store.history == []
    one = both.model_copy(update={"work_item_ids": [ours.work_item_id], "note": "all yours"})
    (event,) = await _run(bulk.bulk_assign, one, TL_A, repos)
    assert isinstance(event, BulkAssigned)
    assert [(i.owner_id, i.owner_unit_id) for i in event.items] == [("cw-a1", "team-a")]
    assert store.history == [(ours.work_item_id, "assigned", {"note": "all yours", "bulk": True})]


# --- relationships --------------------------------------------------------------------------


async def test_al05_relationship_needs_an_active_worker_and_an_allocator() -> None:
    repos, _, _ = _world()
    cmd = RecordWorkerRelationship(
        person_id=PERSON, worker_position_id="ta-north", from_date=date(2026, 3, 1)
    )
    with pytest.raises(RuleViolation) as refused:
        await _run(relationships.record_worker_relationship, cmd, HUB_1, repos)
    assert _rule(refused) == "AL10"
    (recorded,) = await _run(relationships.record_worker_relationship, cmd, SO_NORTH, repos)
    assert (recorded.worker_user_id, recorded.from_date) == (TA_NORTH.user_id, date(2026, 3, 1))
    missing = cmd.model_copy(update={"worker_position_id": "nobody"})
    with pytest.raises(RuleViolation) as unknown:
        await _run(relationships.record_worker_relationship, missing, SO_NORTH, repos)
    assert _rule(unknown) == "AL05"


# --- moves ----------------------------------------------------------------------------------


async def test_ac07_absent_caseworkers_cases_go_to_a_colleague_in_both_versions() -> None:
    held = _item(("worker", "cw-a1"), StepType.SERVICE_REQUEST, WorkState.INCOMPLETE)
    repos, store, _ = _world(held)
    cmd = MoveAbsentCaseworkerWork(from_position_id="cw-a1", to_position_id="cw-a2")
    with pytest.raises(RuleViolation) as refused:
        await _run(moves.move_absent_caseworker_work, cmd, CW_A2, repos)
    assert _rule(refused) == "AC07"
    events = await _run(moves.move_absent_caseworker_work, cmd, TL_A, repos)
    summary_v1, summary_v2 = events[-2:]
    assert isinstance(summary_v1, AbsentCaseworkerWorkMoved)
    assert isinstance(summary_v2, AbsentCaseworkerWorkMovedV2)
    assert summary_v1.moved == summary_v2.items
    assert summary_v2.items[0].state == "incomplete"  # AL09: started work stays started
    assert store.items[held.work_item_id].owner_id == "cw-a2"


async def test_ac16_release_moves_held_work_to_the_hopper_and_answers_with_the_items() -> None:
    held = _item(("worker", "cw-a1"), StepType.SERVICE_REQUEST)
    repos, store, _ = _world(held)
    asked = PositionReleaseRequested(
        release_id=uuid.uuid4(), user_id=CW_A1.user_id, position_id="cw-a1"
    )
    events = await _run(moves.position_release_requested, asked, None, repos)
    v1, v2 = events[-2:]
    assert isinstance(v1, PositionWorkReleased) and isinstance(v2, PositionWorkReleasedV2)
    assert [(i.owner_kind, i.owner_id, i.owner_unit_id) for i in v2.items] == [
        ("hopper", "hopper-a", "team-a")
    ]
    assert [m.to_owner.id for m in v1.moved] == ["hopper-a"]
    assert store.history[-1][1:] == ("moved", {"rule": "AC16"})


# --- sign-off's outcomes --------------------------------------------------------------------


async def test_so07_ac16_returned_step_never_goes_to_a_removed_position() -> None:
    step = _item(("team", domain.MANAGEMENT_TEAM), StepType.TRUSTED_ASSESSMENT, WorkState.INCOMING)
    repos, store, _ = _world(step)
    repos.directory.positions["ta-north"] = Position(
        "ta-north",
        TA_NORTH.user_id,
        domain.NORTH_TEAM,
        Role.TRUSTED_ASSESSOR.value,
        "primary",
        False,
        active=False,
    )
    returned = RequestReturned(
        request_id=uuid.uuid4(),
        step_id=step.work_item_id,
        person_id=PERSON,
        note="more detail",
        return_to_position_id="ta-north",
    )
    *_, event = await _run(signoff_outcomes.request_returned, returned, None, repos)
    assert isinstance(event, WorkItemReturnedV2)
    assert (event.items[0].owner_id, event.items[0].state) == (domain.MANAGEMENT_TEAM, "incomplete")
    assert store.notes[step.work_item_id] == ["more detail"]


async def test_so09_finished_step_is_locked_and_its_next_action_is_new_work_once() -> None:
    triage = _item(("worker", "hub-1"), StepType.TRIAGE, WorkState.INCOMPLETE)
    repos, store, _ = _world(triage)
    finished = StepFinished(
        step_id=triage.work_item_id,
        person_id=PERSON,
        step_type=StepType.TRIAGE,
        finished_by_position_id="hub-1",
        next_actions=[
            NextAction(
                action_id=uuid.uuid4(),
                action_type=StepType.TRUSTED_ASSESSMENT.value,
                assignee_kind="team",
                assignee_id=domain.HUB_TEAM,
            )
        ],
    )
    events = await _run(signoff_outcomes.step_finished, finished, None, repos)
    assert store.items[triage.work_item_id].state is WorkState.FINISHED
    assert any(isinstance(e, WorkItemFinishedV2) for e in events)
    (created,) = [e for e in events if isinstance(e, WorkItemCreatedV2)]
    assert created.items[0].owner_id == domain.NORTH_TEAM  # AL13 with AL02: the person's area
    assert len(store.documents) == 1  # AL15
    again = await _run(signoff_outcomes.step_finished, finished, None, repos)
    assert not [e for e in again if isinstance(e, WorkItemCreatedV2 | WorkItemFinishedV2)]
