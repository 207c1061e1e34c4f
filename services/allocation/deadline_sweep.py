"""The deadline sweep (DL02): unfinished work whose due day has arrived is flagged `due`, work
past its due date `overdue`, each once, with `WorkItemDue` / `WorkItemOverdue`.

Exactly once across restarts and instances: the flag is written in the transaction that writes
the event to the outbox, and rows are taken `FOR UPDATE SKIP LOCKED`, so two instances sweeping
at once share the rows and a later sweep sees the flag. `sweep_batch(work)` takes its time from
the unit of work, so tests drive the clock explicitly; the task runs it with the runtime's
clock."""

from __future__ import annotations

import asyncio

from contracts.allocation import WorkItemDue, WorkItemOverdue
from services.allocation import store
from services.allocation.deadlines import DeadlineFlag, next_flag, sweep_horizon
from services.shared import logs
from services.shared.runtime import ServiceRuntime, UnitOfWork

log = logs.get(__name__)
SWEEP_SECONDS = 60.0
BATCH = 200  # rows per transaction: a backlog is flagged in several short transactions


async def sweep_batch(work: UnitOfWork, limit: int = BATCH) -> int:
    """Raises the deadline flags of up to `limit` items as of `work.now`; returns how many
    rows it took (each of them gets its flag)."""
    conn, now = work.conn, work.now
    t = store.work_items
    reached = await store.deadlines_reached(conn, now, sweep_horizon(now), limit)
    for item, flagged in reached:
        flag = next_flag(item.due_at, now, DeadlineFlag(flagged), item.state)
        if flag is None or item.due_at is None:
            continue
        await conn.execute(
            t.update().where(t.c.work_item_id == item.work_item_id).values(deadline_flag=flag.value)
        )
        await conn.execute(  # AL12: the flag is a change to the item, in its history
            store.work_history.insert().values(
                store.history_row(
                    item, flag.value, actor_user_id=None, at=now, detail={"rule": "DL02"}
                )
            )
        )
        owner_seat = await store.seat(conn, item.owner_id) if item.owner_kind == "worker" else None
        snapshot = store.snapshot(
            item,
            person_name=item.person_name,
            owner_seat=owner_seat,
            owner_unit=await store.owning_unit(conn, item.owner_kind, item.owner_id),
            actor_user_id=None,
            actor_position_id=None,
        )
        event = WorkItemDue if flag is DeadlineFlag.DUE else WorkItemOverdue
        work.emit(event(person_id=item.person_id, item=snapshot, due_at=item.due_at))
    return len(reached)


async def sweep(runtime: ServiceRuntime) -> int:
    """Sweeps as of the runtime's clock until nothing is left; returns how many were flagged."""
    flagged = 0
    while True:
        async with runtime.unit_of_work() as work:
            taken = await sweep_batch(work)
        flagged += taken
        if taken < BATCH:
            return flagged


async def run(runtime: ServiceRuntime) -> None:
    """The periodic task (ServiceSpec.tasks)."""
    while True:
        try:
            await sweep(runtime)
        except Exception:
            log.exception("deadline sweep failed; retrying at the next tick")
        await asyncio.sleep(SWEEP_SECONDS)
