"""AC16 with TR08, against the real allocation service: a removed position holding more work
than one event holds is answered in parts; the access goes once, with the last part, every
item back in the hopper and every item counted in the release."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from contracts.access import (
    AccessGrantRecorded,
    AccessKind,
    ChangePosition,
    CurrentPositionChanged,
    P30Recorded,
    PositionReleaseRequested,
    PositionRevoked,
    RequestAccessRemoval,
    RequestHierarchicalAccess,
)
from contracts.allocation import (
    BULK_EVENT_ITEMS,
    PositionWorkReleased,
    PositionWorkReleasedV2,
    StepType,
    WorkState,
)
from services.access import store as access_store
from services.allocation import store as allocation_store
from tests.access.conftest import AccessService, Org, eventually
from tests.conftest import RunningService

MANY = BULK_EVENT_ITEMS + 1  # one more than a part holds: two parts


async def _allocation_knows(allocation: RunningService, position_id: str) -> None:
    positions = allocation_store.directory_t.positions

    async def active() -> bool:
        async with allocation.runtime.engine.connect() as conn:
            return bool(
                await conn.scalar(
                    sa.select(positions.c.active).where(positions.c.position_id == position_id)
                )
            )

    await eventually(active)


async def _give_work(allocation: RunningService, position_id: str, count: int) -> list[uuid.UUID]:
    """The setup, written straight into allocation's store: `count` service requests held by
    the position (what is tested is the one removal)."""
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "work_item_id": i,
            "person_id": f"P-{i.hex[:8]}",
            "step_type": StepType.SERVICE_REQUEST.value,
            "state": WorkState.INCOMING.value,
            "owner_kind": "worker",
            "owner_id": position_id,
            "priority": "normal",
            "created_at": now,
            "updated_at": now,
        }
        for i in ids
    ]
    async with allocation.runtime.engine.begin() as conn:
        await conn.execute(sa.insert(allocation_store.work_items), rows)
    return ids


async def _owners(allocation: RunningService, ids: list[uuid.UUID]) -> set[tuple[str, str]]:
    w = allocation_store.work_items
    async with allocation.runtime.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(w.c.owner_kind, w.c.owner_id).where(w.c.work_item_id.in_(ids))
        )
        return {(r.owner_kind, r.owner_id) for r in rows}


async def test_tr08_ac16_removing_a_position_with_more_work_than_one_part_moves_it_all_once(
    access: AccessService, allocation: RunningService, org: Org
) -> None:
    granted = await org.granted(
        RequestHierarchicalAccess(
            user_id=org.id("cw-1"),
            unit_ids=[org.id("team-appeals")],
            agreed_with=org.id("tl-appeals"),
        ),
        "tl-enf-1",
    )
    appeals = granted.one(AccessGrantRecorded).position_id
    await _allocation_knows(allocation, appeals)
    ids = await _give_work(allocation, appeals, MANY)

    asked = await org.send(
        RequestAccessRemoval(
            user_id=org.id("cw-1"), position_id=appeals, kind=AccessKind.HIERARCHICAL
        ),
        "sm-enf",
        wait_for=P30Recorded,
    )
    removal = await org.action(asked, wait_for=PositionReleaseRequested)
    release_id = removal.one(PositionReleaseRequested).release_id

    def revoked() -> list[Any]:
        return [
            e
            for e in org.event_log.envelopes()
            if e.type == PositionRevoked.TYPE and e.payload["position_id"] == appeals
        ]

    await org.event_log.wait_for(revoked, timeout=60)

    def answers(model: Any) -> list[Any]:
        return [
            model.model_validate(e.payload)
            for e in org.event_log.envelopes()
            if e.type == model.TYPE and e.payload["release_id"] == str(release_id)
        ]

    parts = answers(PositionWorkReleasedV2)
    assert [(p.part, p.parts) for p in parts] == [(1, 2), (2, 2)]
    assert sorted(i.work_item_id for p in parts for i in p.items) == sorted(ids)
    (v1,) = answers(PositionWorkReleased)  # version 1: one answer naming every item
    assert sorted(m.work_item_id for m in v1.moved) == sorted(ids)

    hopper = org.id("hopper-team-appeals")
    assert await _owners(allocation, ids) == {("hopper", hopper)}
    r = access_store.releases
    async with access.runtime.engine.connect() as conn:
        state, moved = (
            await conn.execute(sa.select(r.c.state, r.c.moved).where(r.c.release_id == release_id))
        ).one()
    assert state == "released"
    assert sorted(m["work_item_id"] for m in moved) == sorted(str(i) for i in ids)

    # The access went once: a later command of the user's is answered, and still one revocation.
    marker = await org.send(
        ChangePosition(user_id=org.id("cw-1"), position_id=org.pos("cw-1")),
        "cw-1",
        wait_for=CurrentPositionChanged,
    )
    assert marker.rejection is None
    assert len(revoked()) == 1
    positions = (await access.get(org.id("cw-1"), "/me/positions")).json()
    assert positions["secondary"] == []
