"""Replay benchmark: a service rebuilds its directory projection from access.events.

    python -m bench.replay [--users 10000] [--service allocation]

`--users` users, each registered and granted one position (two events per user), are published
on access.events first. Then, from one run:
- the raw consume rate of the topic (a plain aiokafka consumer reading it from the start,
  events/s): what the broker and the client give before any work is done;
- the service (`--service`, any that projects the directory) started on a fresh database with
  a fresh consumer group, as after a restore or a new projection: events/s from its start until
  every position is in its `dir_positions` table (migrations and the group join are excluded:
  the clock starts at the service's first projected row).

Prints one JSON object; the ratio to the raw consume rate is the figure to compare across runs
on a shared machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.engine import make_url

from bench.harness import BenchInfra, infrastructure, service_process
from contracts import Envelope, Event, Topics
from contracts.access import AccessKind, PositionGranted, Role, UserRegistered


def directory_events(users: int) -> list[Event]:
    events: list[Event] = []
    for i in range(users):
        user = f"replay-user-{i}"
        events.append(UserRegistered(user_id=user, name=f"Replay User {i}"))
        events.append(
            PositionGranted(
                user_id=user,
                position_id=f"replay-pos-{i}",
                unit_id="replay-team",
                role=Role.CASEWORKER,
                kind=AccessKind.PRIMARY,
            )
        )
    return events


async def publish(infra: BenchInfra, events: list[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                Topics.ACCESS_EVENTS,
                Envelope.wrap(e).model_dump_json().encode(),
                key=(e.key() or "").encode(),
            )
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_consume_rate(infra: BenchInfra, count: int) -> float:
    """Events/s of a plain consumer reading the topic from its start (values decoded as JSON,
    the least a projection must do)."""
    consumer = AIOKafkaConsumer(
        Topics.ACCESS_EVENTS,
        bootstrap_servers=infra.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    try:
        seen, start = 0, 0.0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            if not start and batch:
                start = time.perf_counter()
            for records in batch.values():
                for record in records:
                    json.loads(record.value)
                    seen += 1
        return count / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def rebuild_rate(infra: BenchInfra, service: str, wanted: int) -> dict[str, Any]:
    dsn = make_url(infra.database_url).set(drivername="postgresql").render_as_string(False)
    table = f"{service}.dir_positions"
    conn = await asyncpg.connect(dsn)
    try:
        start = have = 0
        first_at = 0.0
        deadline = time.perf_counter() + 600
        while have < wanted:
            try:
                have = int(await conn.fetchval(f"select count(*) from {table}") or 0)
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                have = 0
            if have and not first_at:
                first_at, start = time.perf_counter(), have
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{have} of {wanted} positions projected")
            await asyncio.sleep(0.02)  # polling the outcome, not waiting for one
        elapsed = time.perf_counter() - first_at
    finally:
        await conn.close()
    # Two events per position (the user, then the position); the first `start` positions were
    # projected before the clock started.
    events = 2 * (wanted - start)
    return {
        "events": 2 * wanted,
        "timed_events": events,
        "elapsed_s": round(elapsed, 2),
        "rebuild_events_per_s": round(events / elapsed, 1) if elapsed > 0 else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--service", default="allocation")
    args = parser.parse_args()
    events = directory_events(args.users)
    with infrastructure() as infra:
        asyncio.run(publish(infra, events))
        raw = asyncio.run(raw_consume_rate(infra, len(events)))
        with service_process(args.service, infra):
            rebuild = asyncio.run(rebuild_rate(infra, args.service, args.users))
    report = {
        "service": f"{args.service} (directory projection rebuilt from access.events)",
        "rebuild": {
            **rebuild,
            "ratio_to_raw_consume": round(rebuild["rebuild_events_per_s"] / raw, 3),
        },
        "raw": {"aiokafka_consume_events_per_s": round(raw, 1)},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
