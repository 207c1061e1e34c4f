"""Allocation benchmark: bulk assign of 1,000 items and assign commands end to end.

    python -m bench.allocation_bench [--items 1000] [--rounds 5] [--assigns 2000] [--rate 200]

The allocation service runs as its own process on the real broker (CASEWORK_KAFKA_BOOTSTRAP_SERVERS
or an embedded tansu) and a fresh database on CASEWORK_DATABASE_URL's server (else an embedded
PostgreSQL). The walkthrough directory is projected from access.events first.

Prints, from one run:
- bulk assign (AL08) of `--items` work items for one person: preview and assign, each command
  published → its outcome event observed, for `--rounds` rounds (the items go back and forth
  between two Hub workers);
- assign commands (AssignWork, one per person) published in one burst: end-to-end commands/s
  and the latency of each (p50/p99), then at a fixed offered rate: p50/p99;
- beside them the raw aiokafka produce rate and the raw PostgreSQL single-row commit rate of the
  same run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import create_async_engine

from bench.harness import (
    BenchInfra,
    CommandProducer,
    OutcomeWatcher,
    commit_rate,
    infrastructure,
    produce_rate,
    service_process,
    summary_ms,
)
from contracts import Actor, Command, Envelope, Event, Topics
from contracts.access import AccessKind, LoadDirectory, PositionGranted, UnitDefined, UserRegistered
from contracts.allocation import (
    AssignWork,
    BulkAssign,
    CreateStep,
    PreviewBulkAssign,
    ReceiveReferral,
    StepType,
)

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "services" / "access" / "walkthrough_directory.json"
SO_HUB = Actor(user_id="so-hub", position_id="pos-so-hub")
HUB_WORKERS = ("pos-hub-1", "pos-hub-2")


def directory_events() -> list[Event]:
    load = LoadDirectory.model_validate_json(DIRECTORY.read_text())
    return [
        *(UnitDefined(**u.model_dump(include=set(UnitDefined.model_fields))) for u in load.units),
        *(UserRegistered(**u.model_dump()) for u in load.users),
        *(
            PositionGranted(
                user_id=p.user_id,
                position_id=p.position_id,
                unit_id=p.unit_id,
                role=p.role,
                kind=AccessKind.PRIMARY,
            )
            for p in load.positions
        ),
    ]


async def seed_directory(infra: BenchInfra) -> None:
    events = directory_events()
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                Topics.ACCESS_EVENTS,
                Envelope.wrap(event).model_dump_json().encode(),
                key=(event.key() or "").encode(),
            )
    finally:
        await producer.stop()
    wanted = sum(isinstance(e, PositionGranted) for e in events)
    engine = create_async_engine(infra.database_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(Exception):
                async with engine.connect() as conn:
                    have = await conn.scalar(
                        sa.text("select count(*) from allocation.dir_positions")
                    )
                if have == wanted:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("directory not projected")
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


async def send_all(
    producer: CommandProducer, commands: Sequence[Command]
) -> tuple[list[uuid.UUID], dict[uuid.UUID, float]]:
    ids, sent_at = [], {}
    for command in commands:
        envelope, _ = await producer.send(Topics.ALLOCATION_COMMANDS, command)
        ids.append(envelope.message_id)
        sent_at[envelope.message_id] = time.perf_counter()
    await producer.producer.flush()
    return ids, sent_at


async def timed(producer: CommandProducer, outcomes: OutcomeWatcher, command: Command) -> float:
    start = time.perf_counter()
    ids, _ = await send_all(producer, [command])
    await outcomes.wait_all(ids, 300, refuse_rejections=True)
    return outcomes.seen[ids[0]].at - start


async def run(
    infra: BenchInfra, items: int, rounds: int, assigns: int, rate: int
) -> dict[str, Any]:
    await seed_directory(infra)
    producer = CommandProducer(infra.bootstrap, infra.keys, SO_HUB)
    outcomes = OutcomeWatcher(infra.bootstrap, Topics.ALLOCATION_EVENTS)
    await producer.start()
    await outcomes.start()
    try:
        # --- bulk assign: `items` items of one person ---------------------------------------
        person = f"BULK-{uuid.uuid4().hex[:8]}"
        work_ids = [uuid.uuid4() for _ in range(items)]
        setup: list[Command] = [
            ReceiveReferral(person_id=person, person_name="Bulk Bench Person", area="North")
        ]
        setup += [
            CreateStep(person_id=person, step_type=StepType.TRIAGE, work_item_id=i)
            for i in work_ids[1:]
        ]
        ids, _ = await send_all(producer, setup)
        await outcomes.wait_all(ids, 300, refuse_rejections=True)
        referral_item = outcomes.seen[ids[0]].payload["work_item_id"]
        work_ids[0] = uuid.UUID(referral_item)
        previews, assigns_ms = [], []
        for r in range(rounds):
            to = HUB_WORKERS[r % 2]
            previews.append(
                await timed(
                    producer,
                    outcomes,
                    PreviewBulkAssign(work_item_ids=work_ids, to_position_id=to, note="bulk"),
                )
            )
            assigns_ms.append(
                await timed(
                    producer,
                    outcomes,
                    BulkAssign(work_item_ids=work_ids, to_position_id=to, note=f"round {r}"),
                )
            )

        # --- assign commands: one triage item per person ------------------------------------
        referrals = [
            ReceiveReferral(person_id=f"A-{uuid.uuid4().hex[:12]}", person_name=f"P {i}")
            for i in range(assigns)
        ]
        ids, _ = await send_all(producer, referrals)
        await outcomes.wait_all(ids, 300, refuse_rejections=True)
        triage = [
            (r.person_id, uuid.UUID(outcomes.seen[i].payload["work_item_id"]))
            for r, i in zip(referrals, ids, strict=True)
        ]

        def assign(pair: tuple[str, uuid.UUID], to: str) -> AssignWork:
            return AssignWork(person_id=pair[0], work_item_id=pair[1], to_position_id=to)

        start = time.perf_counter()
        ids, sent_at = await send_all(producer, [assign(p, HUB_WORKERS[0]) for p in triage])
        published = time.perf_counter()
        await outcomes.wait_all(ids, 300, refuse_rejections=True)
        last = max(outcomes.seen[i].at for i in ids)
        burst = {
            "commands": assigns,
            "end_to_end_commands_per_s": round(assigns / (last - start), 1),
            "publish_only_commands_per_s": round(assigns / (published - start), 1),
            "elapsed_s": round(last - start, 3),
            **summary_ms([outcomes.seen[i].at - t for i, t in sent_at.items()]),
        }

        paced_sent: dict[uuid.UUID, float] = {}
        start = time.perf_counter()
        for n, pair in enumerate(triage):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            envelope, _ = await producer.send(
                Topics.ALLOCATION_COMMANDS, assign(pair, HUB_WORKERS[1])
            )
            paced_sent[envelope.message_id] = time.perf_counter()
        await producer.producer.flush()
        offered = len(triage) / (time.perf_counter() - start)
        await outcomes.wait_all(list(paced_sent), 300, refuse_rejections=True)
        paced = {
            "offered_rate_per_s": round(offered, 1),
            "commands": len(paced_sent),
            **summary_ms([outcomes.seen[i].at - t for i, t in paced_sent.items()]),
        }
        return {
            "bulk_assign": {
                "items": items,
                "preview_ms": [round(v * 1000, 1) for v in previews],
                "assign_ms": [round(v * 1000, 1) for v in assigns_ms],
                "preview": summary_ms(previews),
                "assign": summary_ms(assigns_ms),
            },
            "assign_burst": burst,
            "assign_at_offered_rate": paced,
        }
    finally:
        await outcomes.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--assigns", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()
    with infrastructure() as infra:
        raw_produce = asyncio.run(produce_rate(infra.bootstrap, args.assigns, 400))
        raw_commit = asyncio.run(commit_rate(infra.database_url))
        with service_process("allocation", infra):
            result = asyncio.run(run(infra, args.items, args.rounds, args.assigns, args.rate))
    report = {
        "service": "allocation",
        **result,
        "raw": {
            "aiokafka_produce_records_per_s": round(raw_produce, 1),
            "postgres_single_row_commits_per_s": round(raw_commit, 1),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
