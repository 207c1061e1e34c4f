"""TR08: an absent caseworker's move (AC07) and a removed position's release (AC16) of more
items than fit one record are announced in parts of BULK_EVENT_ITEMS items (version 2), with
one version 1 event beside them; on fake repositories, without the broker or the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import Actor, Event, Message
from contracts.access import AccessKind, PositionReleaseRequested, Role
from contracts.allocation import (
    BULK_EVENT_ITEMS,
    AbsentCaseworkerWorkMoved,
    AbsentCaseworkerWorkMovedV2,
    MoveAbsentCaseworkerWork,
    Owner,
    PositionWorkReleased,
    PositionWorkReleasedV2,
    PositionWorkReleaseFailed,
    StepType,
    WorkItemMovedV2,
    WorkItemSnapshot,
    WorkState,
)
from contracts.limits import BULK_ITEMS_MAX
from services.allocation import versions
from services.allocation.domain import Unit, WorkItem
from services.allocation.handlers import moves
from services.shared.positions import Position
from services.shared.transaction import HandlerContext
from tests.allocation.fakes import FakeWorkItems, fake_repositories

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PRIMARY = AccessKind.PRIMARY.value
TL_A = Position("tl-a", "user-tl-a", "team-a", Role.TEAM_LEADER.value, PRIMARY, False)
CW_A1 = Position("cw-a1", "user-cw-a1", "team-a", Role.CASEWORKER.value, PRIMARY, False)
CW_A2 = Position("cw-a2", "user-cw-a2", "team-a", Role.CASEWORKER.value, PRIMARY, False)
UNITS = [
    Unit("segment-a", "segment", None, "hopper-seg-a"),
    Unit("team-a", "team", "segment-a", "hopper-a"),
]
MANY = BULK_EVENT_ITEMS + 1  # one more than a part holds: two parts


def _world(count: int) -> tuple[Any, FakeWorkItems, list[uuid.UUID]]:
    repos, store, _ = fake_repositories([TL_A, CW_A1, CW_A2], UNITS)
    ids = [uuid.uuid4() for _ in range(count)]
    for n, i in enumerate(ids):
        store.items[i] = WorkItem(
            i, f"P-{n}", StepType.SERVICE_REQUEST, WorkState.INCOMING, "worker", "cw-a1", "normal"
        )
    return repos, store, ids


async def _run(handler: Any, message: Message, by: Position | None, repos: Any) -> list[Event]:
    actor = Actor(user_id=by.user_id, position_id=by.position_id) if by else None
    ctx = HandlerContext.for_message(message, now=NOW, actor=actor)
    await handler(ctx, repos)
    return ctx.events


def _summaries(events: list[Event], v2: type[Event]) -> tuple[list[Event], list[Any]]:
    """The events before the parts (one per item and version, then the one v1 summary), and the
    v2 parts, which come last."""
    parts = [e for e in events if isinstance(e, v2)]
    assert events[-len(parts) :] == parts  # the parts last, in order
    return events[: -len(parts)], parts


async def test_tr08_ac16_a_large_release_is_answered_in_parts_beside_one_v1_answer() -> None:
    repos, store, ids = _world(MANY)
    asked = PositionReleaseRequested(
        release_id=uuid.uuid4(), user_id=CW_A1.user_id, position_id="cw-a1"
    )
    events = await _run(moves.position_release_requested, asked, None, repos)
    before, parts = _summaries(events, PositionWorkReleasedV2)
    assert [(p.part, p.parts) for p in parts] == [(1, 2), (2, 2)]
    assert [len(p.items) for p in parts] == [BULK_EVENT_ITEMS, 1]
    assert all(len(p.from_owners) == len(p.items) for p in parts)
    assert {(o.kind, o.id) for p in parts for o in p.from_owners} == {("worker", "cw-a1")}
    assert [i.work_item_id for p in parts for i in p.items] == ids
    assert {(i.owner_kind, i.owner_id) for p in parts for i in p.items} == {("hopper", "hopper-a")}
    assert all(p.release_id == asked.release_id for p in parts)
    # Version 1 has no parts: one answer, right before the parts, naming every item.
    v1 = before[-1]
    assert isinstance(v1, PositionWorkReleased)
    assert [m.work_item_id for m in v1.moved] == ids
    assert [e for e in events if isinstance(e, PositionWorkReleased)] == [v1]
    assert len([e for e in before if isinstance(e, WorkItemMovedV2)]) == MANY
    assert {(i.owner_kind, i.owner_id) for i in store.items.values()} == {("hopper", "hopper-a")}


async def test_tr08_ac16_a_release_of_nothing_is_one_empty_part() -> None:
    repos, _, _ = _world(0)
    asked = PositionReleaseRequested(
        release_id=uuid.uuid4(), user_id=CW_A1.user_id, position_id="cw-a1"
    )
    events = await _run(moves.position_release_requested, asked, None, repos)
    v1, v2 = events
    assert isinstance(v1, PositionWorkReleased) and v1.moved == []
    assert isinstance(v2, PositionWorkReleasedV2)
    assert (v2.part, v2.parts, v2.items, v2.from_owners) == (1, 1, [], [])


async def test_tr08_ac16_a_release_whose_v1_answer_cannot_be_one_record_fails_moving_nothing() -> (
    None
):
    repos, store, _ = _world(BULK_ITEMS_MAX + 1)
    asked = PositionReleaseRequested(
        release_id=uuid.uuid4(), user_id=CW_A1.user_id, position_id="cw-a1"
    )
    (failed,) = await _run(moves.position_release_requested, asked, None, repos)
    assert isinstance(failed, PositionWorkReleaseFailed) and failed.reason.startswith("TR08:")
    assert {i.owner_id for i in store.items.values()} == {"cw-a1"}  # nothing moved


async def test_tr08_ac07_a_large_absent_move_comes_in_parts_beside_one_v1_event() -> None:
    repos, store, ids = _world(MANY)
    cmd = MoveAbsentCaseworkerWork(from_position_id="cw-a1", to_position_id="cw-a2")
    events = await _run(moves.move_absent_caseworker_work, cmd, TL_A, repos)
    before, parts = _summaries(events, AbsentCaseworkerWorkMovedV2)
    assert [(p.part, p.parts) for p in parts] == [(1, 2), (2, 2)]
    assert [i.work_item_id for p in parts for i in p.items] == ids
    assert [len(p.from_owners) for p in parts] == [BULK_EVENT_ITEMS, 1]
    assert [p.to_owner for p in parts] == [Owner(kind="worker", id="cw-a2")] * 2
    v1 = before[-1]
    assert isinstance(v1, AbsentCaseworkerWorkMoved)
    assert v1.moved == [i for p in parts for i in p.items]
    assert {i.owner_id for i in store.items.values()} == {"cw-a2"}


def _snapshot(n: int) -> WorkItemSnapshot:
    return WorkItemSnapshot(
        work_item_id=uuid.uuid4(),
        person_id=f"P-{n}",
        person_name="N" * 256,
        step_type=StepType.SERVICE_REQUEST,
        state=WorkState.INCOMING,
        owner_kind="worker",
        owner_id="cw-a2",
        owner_user_id="user-cw-a2",
        owner_unit_id="team-a",
        priority="normal",
        acting_user_id="user-tl-a",
        acting_position_id="tl-a",
    )


def test_tr08_ac07_an_absent_move_whose_v1_event_cannot_be_one_record_is_refused() -> None:
    """v1 of the absent move carries whole snapshots and has no parts: a move too large for its
    one record is refused (the consumer answers the command with TR08) while v1 is published."""
    snapshots = [_snapshot(n) for n in range(4 * BULK_EVENT_ITEMS)]  # over 1.1 MB
    parts = [
        AbsentCaseworkerWorkMovedV2(
            from_position_id="cw-a1",
            to_owner=Owner(kind="worker", id="cw-a2"),
            items=snapshots[start : start + BULK_EVENT_ITEMS],
            from_owners=[Owner(kind="worker", id="cw-a1")] * BULK_EVENT_ITEMS,
            part=n,
            parts=4,
        )
        for n, start in enumerate(range(0, len(snapshots), BULK_EVENT_ITEMS), start=1)
    ]
    with pytest.raises(versions.V1TooLarge, match=r"^TR08:"):
        versions.predecessor_of(parts)
    assert versions.predecessor_of(parts[:1]) is not None  # one part's worth fits


def test_tr08_ac16_the_v1_answer_of_the_largest_release_fits_one_record() -> None:
    """A release's v1 entries are small: BULK_ITEMS_MAX of them, with ordinary ids, fit."""
    parts = [
        PositionWorkReleasedV2(
            release_id=uuid.uuid4(),
            user_id="user-cw-a1",
            position_id="cw-a1",
            items=[_snapshot(n) for n in range(BULK_EVENT_ITEMS)],
            from_owners=[Owner(kind="worker", id="cw-a1")] * BULK_EVENT_ITEMS,
            part=p,
            parts=BULK_ITEMS_MAX // BULK_EVENT_ITEMS,
        )
        for p in range(1, BULK_ITEMS_MAX // BULK_EVENT_ITEMS + 1)
    ]
    v1 = versions.predecessor_of(parts)
    assert isinstance(v1, PositionWorkReleased) and len(v1.moved) == BULK_ITEMS_MAX
    for part in parts:  # and each v2 part fits one record too
        assert len(part.model_dump_json()) < 1_000_000 - versions.ENVELOPE_MARGIN
