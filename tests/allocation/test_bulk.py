"""Bulk assign (AL08): find work by the person's name, preview each item's outcome without
changing anything, then pass them all to one worker with one note, all or none."""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from contracts import Topics
from contracts.allocation import (
    BULK_EVENT_ITEMS,
    BulkAssign,
    BulkAssigned,
    BulkAssignPreviewed,
    CreateStep,
    PreviewBulkAssign,
    ReceiveReferral,
    StepType,
)
from contracts.limits import BULK_ITEMS_MAX
from services.allocation import api, domain, store
from services.shared.auth import SigningKey
from tests.allocation.helpers import (
    SO_HUB,
    SO_MGMT,
    eventually,
    get,
    new_person,
    ok,
    only,
    refused,
    step,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

HUB_2 = "pos-hub-2"


async def _owners(service: RunningService, ids: list[uuid.UUID]) -> set[tuple[str, str]]:
    t = store.work_items
    async with service.runtime.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(t.c.owner_kind, t.c.owner_id).where(t.c.work_item_id.in_(ids))
        )
        return {(r.owner_kind, r.owner_id) for r in rows}


async def _person_with_three_steps(
    commands: CommandClient, event_log: EventLog, name: str
) -> list[uuid.UUID]:
    person = new_person()
    created = await ok(
        commands,
        event_log,
        ReceiveReferral(person_id=person, person_name=name, area="North"),
        SO_HUB,
    )
    triage = uuid.UUID(created[0].payload["work_item_id"])
    assessment = await step(commands, event_log, person, StepType.TRUSTED_ASSESSMENT)
    monitoring = await step(commands, event_log, person, StepType.CASE_MONITORING)
    return [triage, assessment.work_item_id, monitoring.work_item_id]


async def test_al08_search_by_name_and_preview_change_nothing(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    name = f"Bertha Bulk {uuid.uuid4().hex[:6]}"
    ids = await _person_with_three_steps(commands, event_log, name)
    found = await get(directory, SO_MGMT, "/work-items", person_name=name.split()[-1].upper())
    assert {i["work_item_id"] for i in found["work_items"]} == {str(i) for i in ids}
    unknown = uuid.uuid4()
    preview = PreviewBulkAssign(
        work_item_ids=[*ids, unknown], to_position_id=HUB_2, note="all yours"
    )
    previewed = only(await ok(commands, event_log, preview, SO_HUB), BulkAssignPreviewed)
    outcomes = {o.work_item_id: o for o in previewed.outcomes}
    assert not previewed.would_apply
    assert outcomes[ids[0]].ok and outcomes[ids[2]].ok  # Hub Team work
    assert (outcomes[ids[1]].ok, outcomes[ids[1]].rule) == (False, "AL10")  # North Team work
    assert (outcomes[unknown].ok, outcomes[unknown].rule) == (False, "AL08")
    assert await _owners(directory, ids) == {
        ("team", domain.HUB_TEAM),
        ("team", domain.NORTH_TEAM),
    }


async def test_al08_bulk_assign_is_all_or_nothing_with_a_reason_per_item(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    ids = await _person_with_three_steps(commands, event_log, "Bruno Bulk")
    command = BulkAssign(work_item_ids=ids, to_position_id=HUB_2, note="one note for all")
    rejection = await refused(commands, event_log, command, SO_HUB)
    assert rejection.rule == "AL08"
    assert "1 of 3" in rejection.reason
    assert rejection.reason.split("AL10 ", 1)[1].endswith(f": {ids[1]}")
    assert ("worker", HUB_2) not in await _owners(directory, ids)

    # From the Management Team every item may be passed: all move, the note on each.
    assigned = only(await ok(commands, event_log, command, SO_MGMT), BulkAssigned)
    assert [s.work_item_id for s in assigned.items] == ids
    assert {(s.owner_id, s.owner_user_id, s.person_name) for s in assigned.items} == {
        (HUB_2, "hub-2", "Bruno Bulk")
    }
    assert await _owners(directory, ids) == {("worker", HUB_2)}
    for work_item_id in ids:
        item = await get(directory, SO_MGMT, f"/work-items/{work_item_id}")
        assert [n["note"] for n in item["notes"]] == ["one note for all"]


async def test_al08_tr08_bulk_assign_of_the_most_items_in_one_transaction_answered_in_parts(
    directory: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    person = new_person()
    created = await ok(
        commands,
        event_log,
        ReceiveReferral(person_id=person, person_name="Mass Allocation", area="North"),
        SO_HUB,
    )
    ids = [uuid.uuid4() for _ in range(BULK_ITEMS_MAX - 1)]
    await commands.publish_as_edge(  # the setup: what is tested is the one bulk command
        edge_key,
        [CreateStep(person_id=person, step_type=StepType.TRIAGE, work_item_id=i) for i in ids],
        SO_HUB,
        Topics.ALLOCATION_COMMANDS,
    )
    t = store.work_items

    async def all_created() -> bool:
        async with directory.runtime.engine.connect() as conn:
            n = await conn.scalar(
                sa.select(sa.func.count()).select_from(t).where(t.c.person_id == person)
            )
        return n == BULK_ITEMS_MAX

    await eventually(all_created, timeout=600)  # a generous bound: a busy machine is slow
    found = await get(directory, SO_HUB, "/work-items", person_name="Mass Allocation")
    assert len(found["work_items"]) == api.SEARCH_LIMIT  # a search shows a page, not all
    every = [uuid.UUID(created[0].payload["work_item_id"]), *ids]

    preview = PreviewBulkAssign(work_item_ids=every, to_position_id=HUB_2, note="bulk")
    previewed = [
        BulkAssignPreviewed.model_validate(e.payload)
        for e in await ok(commands, event_log, preview, SO_HUB)
    ]
    assert sorted(p.part for p in previewed) == list(
        range(1, BULK_ITEMS_MAX // BULK_EVENT_ITEMS + 1)
    )
    assert all(p.would_apply for p in previewed)
    assert sorted(o.work_item_id for p in previewed for o in p.outcomes) == sorted(every)

    started = time.perf_counter()
    command = BulkAssign(work_item_ids=every, to_position_id=HUB_2, note="bulk")
    events = await ok(commands, event_log, command, SO_HUB)
    elapsed = time.perf_counter() - started
    # TR08: the outcome comes in parts that each fit the record limit, all of one command.
    parts = [BulkAssigned.model_validate(e.payload) for e in events]
    assert [(p.part, p.parts) for p in parts] == [
        (n, BULK_ITEMS_MAX // BULK_EVENT_ITEMS) for n in range(1, len(parts) + 1)
    ]
    assert sorted(s.work_item_id for p in parts for s in p.items) == sorted(every)
    assert await _owners(directory, every) == {("worker", HUB_2)}
    async with directory.runtime.engine.connect() as conn:
        h = store.work_history
        bulk_rows, instants = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(h.c.at))).where(
                    h.c.person_id == person, h.c.change == "assigned"
                )
            )
        ).one()
    # Every item's history row written by the one command, at the one instant it applied.
    assert (bulk_rows, instants) == (BULK_ITEMS_MAX, 1)
    print(f"bulk assign of {BULK_ITEMS_MAX} items, end to end: {elapsed * 1000:.0f} ms")
