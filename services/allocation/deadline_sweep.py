"""The deadline sweep (DL02): unfinished work whose due day has arrived is flagged `due`, work
past its due date `overdue`, each once, with `WorkItemDue` / `WorkItemOverdue`.

Exactly once across restarts and instances: the flag is written in the transaction that writes
the event to the outbox, and rows are taken `FOR UPDATE SKIP LOCKED`, so two instances sweeping
at once share the rows and a later sweep sees the flag. `sweep_batch(work)` takes its time from
the unit of work, so tests drive the clock explicitly; the task runs it with the runtime's
clock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from contracts.allocation import WorkItemDueV2, WorkItemOverdueV2, WorkItemSnapshot
from services.allocation import store
from services.allocation.deadlines import DeadlineFlag, next_flag, sweep_horizon
from services.allocation.domain import WorkItem
from services.allocation.versions import predecessor
from services.shared import db, logs
from services.shared.runtime import ServiceRuntime
from services.shared.transaction import Transaction

log = logs.get(__name__)
BATCH = 500  # rows per transaction: a backlog is flagged in several short transactions


async def _snapshots(conn: Any, items: list[WorkItem]) -> list[WorkItemSnapshot]:
    """The items' snapshots, each owner looked up once per batch (the transaction's memo)."""
    out = []
    for item in items:
        holder = await store.position(conn, item.owner_id) if item.owner_kind == "worker" else None
        unit = await store.owning_unit(conn, item.owner_kind, item.owner_id)
        out.append(replace(item, holder=holder, owning_unit=unit).snapshot(None))
    return out


async def sweep_batch(work: Transaction, limit: int = BATCH) -> int:
    """Raises the deadline flags of up to `limit` items as of `work.now`; returns how many
    rows it took (each of them gets its flag)."""
    conn, now = work.conn, work.now
    t = store.work_items
    reached = await store.deadlines_reached(conn, now, sweep_horizon(now), limit)
    raised: dict[DeadlineFlag, list[WorkItem]] = {}
    for item, flagged in reached:
        flag = next_flag(item.due_at, now, DeadlineFlag(flagged), item.state)
        if flag is not None:
            raised.setdefault(flag, []).append(item)
    for flag, items in raised.items():
        ids = [i.work_item_id for i in items]
        await conn.execute(
            t.update().where(t.c.work_item_id.in_(ids)).values(deadline_flag=flag.value)
        )
        await db.insert_many(  # AL12: the flag is a change to the item, in its history
            conn,
            store.work_history.insert(),
            [
                store.history_row(
                    i, flag.value, actor_user_id=None, at=now, detail={"rule": "DL02"}
                )
                for i in items
            ],
        )
        event = WorkItemDueV2 if flag is DeadlineFlag.DUE else WorkItemOverdueV2
        for item, snapshot in zip(items, await _snapshots(conn, items), strict=True):
            assert item.due_at is not None  # next_flag flags only work with a due date
            raised_event = event(person_id=item.person_id, items=[snapshot], due_at=item.due_at)
            if (older := predecessor(raised_event)) is not None:  # v1 beside v2
                work.emit(older)
            work.emit(raised_event)
    return len(reached)


async def sweep(runtime: ServiceRuntime) -> int:
    """Sweeps as of the runtime's clock until nothing is left; returns how many were flagged."""
    flagged = 0
    while True:
        async with runtime.transaction() as work:
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
        await asyncio.sleep(runtime.settings.deadline_sweep_seconds)
