"""Consumer offsets after a broker lost its state (TR08: nothing is lost): a service commits
exactly what it applied, never its fetch positions, and after a lost broker reads every
partition again from its beginning. Over the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.shared.topic_watch import RewindAfterLoss, commit_processed
from tests.support.infra import Infra

pytestmark = pytest.mark.faults


@pytest.fixture
async def topic(infra: Infra) -> AsyncIterator[str]:
    name = f"offsets-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    try:
        for partition in (0, 1):
            for n in range(5):
                await producer.send_and_wait(name, f"{partition}-{n}".encode(), partition=partition)
    finally:
        await producer.stop()
    yield name


def _consumer(infra: Infra, group: str, **kwargs: object) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=infra.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kwargs,  # type: ignore[arg-type]
    )


async def _fetch(consumer: AIOKafkaConsumer, want: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Records until `want` have arrived (waits on outcomes, with a generous cap)."""
    got: list[ConsumerRecord[bytes, bytes]] = []
    async with asyncio.timeout(60):
        while len(got) < want:
            batches = await consumer.getmany(timeout_ms=500)
            got.extend(r for records in batches.values() for r in records)
    return got


async def test_tr08_a_commit_covers_the_applied_records_only(infra: Infra, topic: str) -> None:
    """Records of partition 0 applied; partition 1 fetched but not applied: only partition 0's
    offset is committed, past its last applied record."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = _consumer(infra, group)
    consumer.subscribe([topic])
    await consumer.start()
    try:
        records = await _fetch(consumer, 10)
        applied = [r for r in records if r.partition == 0][:3]
        await commit_processed(consumer, applied)
        p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        assert await consumer.committed(p0) == applied[-1].offset + 1 == 3
        assert await consumer.committed(p1) is None
        assert await consumer.position(p1) == 5  # a plain commit() would have written this
    finally:
        await consumer.stop()


async def test_tr08_after_a_lost_broker_every_partition_is_read_from_its_beginning(
    infra: Infra, topic: str
) -> None:
    """The group's committed offsets (from positions of a broker that restarted empty) are
    not trusted: every partition assigned after the loss starts again at 0; one assigned
    again later keeps its committed offset."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    stale = _consumer(infra, group)
    stale.subscribe([topic])
    await stale.start()
    try:
        await _fetch(stale, 10)
        await stale.commit()  # positions 5 and 5: past every record
    finally:
        await stale.stop()

    holder: dict[str, AIOKafkaConsumer] = {}
    rewind = RewindAfterLoss(lambda: holder.get("consumer"))
    rewind.broker_lost()
    fresh = holder["consumer"] = _consumer(infra, group)
    fresh.subscribe([topic], listener=rewind)
    await fresh.start()
    try:
        records = await _fetch(fresh, 10)
        assert sorted((r.partition, r.offset) for r in records) == [
            (p, n) for p in (0, 1) for n in range(5)
        ]
        await commit_processed(fresh, records)
    finally:
        await fresh.stop()

    again = holder["consumer"] = _consumer(infra, group)
    again.subscribe([topic], listener=rewind)
    await again.start()
    try:
        read_again: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(60):
            while len(again.assignment()) < 2:
                batches = await again.getmany(timeout_ms=500)
                read_again.extend(r for records in batches.values() for r in records)
        assert read_again == []  # nothing read twice
        assert [await again.position(tp) for tp in sorted(again.assignment())] == [5, 5]
    finally:
        await again.stop()
