"""Notifications throughput: notifications delivered per second to the in-app inbox channel.

    python -m bench.notifications_bench [--events 20000] [--users 200]

The notifications service runs as its own process on the real broker (deploy.stack's
EmbeddedBroker unless CASEWORK_KAFKA_BOOTSTRAP_SERVERS is set) and a fresh database on the server
of CASEWORK_DATABASE_URL (embedded PostgreSQL if unset). The directory (users and positions) is
published on access.events first; then `--events` work items assigned to those workers
(`allocation.work_item_created.v1`, owner kind "worker") are published on allocation.events as
fast as the producer goes. A notification counts as delivered when its NotificationSent (channel
"inbox", written with the inbox row in the consuming transaction and published by the outbox) is
observed on notifications.events. Prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy.engine import make_url

from bench.harness import (
    BenchInfra,
    OutcomeWatcher,
    commit_rate,
    infrastructure,
    produce_rate,
    service_process,
)
from contracts import Envelope, Event, Topics
from contracts.access import AccessKind, PositionGranted, Role, UserRegistered
from contracts.allocation import StepType, WorkItemCreatedV2, WorkItemSnapshot, WorkState


async def _publish(
    producer: AIOKafkaProducer, topic: str, events: Sequence[Event]
) -> list[Envelope]:
    envelopes = [Envelope.wrap(e) for e in events]
    futures = [
        await producer.send(topic, env.model_dump_json().encode(), key=(e.key() or "").encode())
        for env, e in zip(envelopes, events, strict=True)
    ]
    await asyncio.gather(*futures)
    return envelopes


def _work(position_id: str, user_id: str) -> WorkItemCreatedV2:
    item = WorkItemSnapshot(
        work_item_id=uuid.uuid4(),
        person_id=f"B-{uuid.uuid4().hex[:12]}",
        step_type=StepType.CASE_MONITORING,
        state=WorkState.INCOMING,
        owner_kind="worker",
        owner_id=position_id,
        owner_user_id=user_id,
        priority="normal",
    )
    return WorkItemCreatedV2(
        person_id=item.person_id, items=[item], created_at=datetime.now(UTC), note="bench"
    )


async def _positions_projected(database_url: str, expected: int, timeout: float = 120) -> None:
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.perf_counter() + timeout
        while True:
            with_schema = await conn.fetchval("select to_regclass('notifications.dir_positions')")
            count = (
                await conn.fetchval("select count(*) from notifications.dir_positions")
                if with_schema
                else 0
            )
            if count >= expected:
                return
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{count}/{expected} positions projected")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def run(infra: BenchInfra, events: int, users: int) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, linger_ms=5, acks="all")
    watcher = OutcomeWatcher(infra.bootstrap, Topics.NOTIFICATIONS_EVENTS)
    await producer.start()
    await watcher.start()
    try:
        workers = [(f"bench-user-{i}", f"bench-pos-{i}") for i in range(users)]
        directory: list[Event] = []
        for user_id, position_id in workers:
            directory.append(UserRegistered(user_id=user_id, name=user_id))
            directory.append(
                PositionGranted(
                    user_id=user_id,
                    position_id=position_id,
                    unit_id="bench-team",
                    role=Role.CASEWORKER,
                    kind=AccessKind.PRIMARY,
                )
            )
        await _publish(producer, Topics.ACCESS_EVENTS, directory)
        await _positions_projected(infra.database_url, users)

        # Warm-up: the code paths are hot and the outbox relay is running.
        warm = await _publish(producer, Topics.ALLOCATION_EVENTS, [_work(p, u) for u, p in workers])
        await watcher.wait_all([e.message_id for e in warm], 120)

        batch = [_work(p, u) for u, p in (workers[i % users] for i in range(events))]
        start = time.perf_counter()
        sent = await _publish(producer, Topics.ALLOCATION_EVENTS, batch)
        published = time.perf_counter()
        await watcher.wait_all([e.message_id for e in sent], 600)
        done = max(watcher.seen[e.message_id].at for e in sent)
        return {
            "events": events,
            "users": users,
            "publish_per_s": round(events / (published - start)),
            "inbox_notifications_per_s": round(events / (done - start)),
            "seconds": round(done - start, 2),
        }
    finally:
        await watcher.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    with infrastructure() as infra:
        # The raw figures of the same run, for ratios on a shared machine.
        raw = {
            "aiokafka_produce_records_per_s": round(
                asyncio.run(produce_rate(infra.bootstrap, 10_000, 400)), 1
            ),
            "postgres_single_row_commits_per_s": round(
                asyncio.run(commit_rate(infra.database_url)), 1
            ),
        }
        with service_process("notifications", infra):
            result = asyncio.run(run(infra, args.events, args.users))
    print(json.dumps({"benchmark": "notifications inbox delivery", **result, "raw": raw}))


if __name__ == "__main__":
    main()
