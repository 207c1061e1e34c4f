"""NT01 with TR08: an absent caseworker's cases moved in parts (AC07, more cases than one
event holds) tell the receiving caseworker once per part, each notice naming that part's
cases; a part read twice tells nobody again (NT07). On fake repositories."""

from __future__ import annotations

import uuid

from contracts.allocation import (
    AbsentCaseworkerWorkMovedV2,
    Owner,
    StepType,
    WorkItemSnapshot,
    WorkState,
)
from services.notifications.handlers import work_landed
from services.shared.transaction import HandlerContext, NoDatabase
from tests.notifications.fakes import NOW, FakeNotifications, handle


def _part(part: int, parts: int, count: int) -> AbsentCaseworkerWorkMovedV2:
    items = [
        WorkItemSnapshot(
            work_item_id=uuid.uuid4(),
            person_id=f"P-{part}-{n}",
            step_type=StepType.SERVICE_REQUEST,
            state=WorkState.INCOMPLETE,
            owner_kind="worker",
            owner_id="pos-cw",
            owner_user_id="cw",
            priority="normal",
        )
        for n in range(count)
    ]
    return AbsentCaseworkerWorkMovedV2(
        from_position_id="pos-absent",
        to_owner=Owner(kind="worker", id="pos-cw"),
        items=items,
        from_owners=[Owner(kind="worker", id="pos-absent")] * count,
        part=part,
        parts=parts,
    )


async def test_nt01_tr08_a_move_in_parts_is_one_notice_per_part_naming_its_cases() -> None:
    repos = FakeNotifications()
    first, last = _part(1, 2, 3), _part(2, 2, 1)
    ctx = await handle(work_landed.absent_work_moved, first, repos)
    await handle(work_landed.absent_work_moved, last, repos)
    bodies = sorted((d.body for _, d in repos.deliveries.rows.values()), key=len, reverse=True)
    assert len(bodies) == 2 and repos.deliveries.told() == {("cw", "NT01")}
    for body, part in zip(bodies, (first, last), strict=True):
        assert f"part {part.part} of 2" in body
        assert all(str(i.work_item_id) in body for i in part.items)
    assert not any(str(i.work_item_id) in bodies[1] for i in first.items)

    again = HandlerContext(  # the first part delivered twice: the same envelope
        conn=NoDatabase(),
        now=NOW,
        event_topic="test.events",
        cause=ctx.envelope,
        envelope=ctx.envelope,
        message=first,
        actor=None,
        roles=frozenset(),
    )
    await work_landed.absent_work_moved(again, repos)
    assert len(repos.deliveries.rows) == 2


async def test_nt01_a_move_in_one_part_does_not_speak_of_parts() -> None:
    repos = FakeNotifications()
    await handle(work_landed.absent_work_moved, _part(1, 1, 2), repos)
    ((_, delivery),) = repos.deliveries.rows.values()
    assert "part" not in delivery.body and "2 items" in delivery.body
