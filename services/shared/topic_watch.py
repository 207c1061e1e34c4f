"""Notices a broker that lost a service's topics (an in-memory broker restarted, a topic deleted)
and brings them back without an operator: recreates the missing ones with the configured
partitions, restarts the consumer so it reads the new topics from their beginning (not from
positions remembered from the old ones, nor from offsets committed from those positions; the
inbox drops what was applied already), and says "not ready" until the consumer holds
partitions again. Offsets are committed per applied record (`commit_processed`), never as the
consumer's fetch positions.

Clients recreate a lost topic on their own (a metadata request for it auto-creates it), so a
topic being there says little. Each consumer group therefore keeps a marker topic nobody asks
for by name: while it exists the broker has kept its state; when it is gone, the broker lost
everything since the marker was made, whatever other topics are back.

A broker that kept its state (s3 storage) can still leave the Kafka client's consumer stuck
after the connection dropped mid-fetch: it holds partitions, has lag and fetches nothing. So the
consumer is also restarted after a broker outage this watch saw, and when it has stalled (work
waiting, no batch finished for `liveness_stall_seconds`, as /livez judges)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.shared import kafka_auth, logs
from services.shared.settings import Settings

log = logs.get(__name__)


class TopicWatch:
    def __init__(
        self,
        settings: Settings,
        topics: Iterable[str],
        *,
        restart_consumer: Callable[[], Awaitable[None]],
        consuming: Callable[[], bool],
        stalled: Callable[[], bool] = lambda: False,
        broker_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.topics = sorted(set(topics))
        self.marker = f"_casework-marker.{settings.group_id}"
        self._restart_consumer = restart_consumer
        self._consuming = consuming
        self._stalled = stalled
        self._broker_lost = broker_lost
        self._outage = False  # the broker did not answer a look since the last check
        self._restarted_at = -float("inf")
        self._nudged = asyncio.Event()
        self.marker_made = False
        self.missing: list[str] = []  # missing at the last look
        self.marker_lost = False  # the broker restarted empty since the marker was made
        self.recovering = False  # recreated; the consumer has not joined again yet
        self.recoveries = 0  # the broker lost its topics
        self.consumer_restarts = 0  # for any reason

    async def not_ready_reason(self) -> str | None:
        """Why the service is not ready as far as its topics go, or None. Looks at the broker
        itself, so that a restarted broker is never called ready before the next check."""
        try:
            async with asyncio.timeout(2):
                self._look(await self.existing())
        except Exception:  # an unreachable broker is the broker check's to report
            self._outage = True
        if self.missing or self.marker_lost:
            self.nudge()
        if self.missing:
            return f"topics missing on the broker: {', '.join(self.missing)}"
        if self.marker_lost:
            return "the broker restarted without its topics and offsets; recovering"
        if self.recovering:
            if self._consuming():
                self.recovering = False
                log.info("consuming again after the broker lost its topics")
                return None
            return "topics recreated; the consumer has not rejoined its group yet"
        return None

    def nudge(self) -> None:
        """Check now rather than at the next interval (a consumer error may mean lost topics)."""
        self._nudged.set()

    async def existing(self) -> set[str]:
        # A metadata request for all topics: unlike one naming a topic, it creates nothing.
        admin = self._admin()
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    def _look(self, existing: set[str]) -> None:
        self.missing = [t for t in self.topics if t not in existing]
        self.marker_lost = self.marker_made and self.marker not in existing

    async def check(self) -> list[str]:
        """Recreates whatever is missing and, if the broker lost its state, restarts the
        consumer; returns the topics that were missing."""
        self._look(await self.existing())
        missing, lost = self.missing, self.marker_lost
        if not missing and not lost and self.marker_made:
            await self._unstick()
            return []
        if missing or lost:
            log.warning("the broker lost topics; recreating them", topics=missing, empty=lost)
        await self._create([*missing, self.marker])
        self.marker_made = True
        if missing or lost:
            self.recoveries += 1
            self.recovering = True
            # Positions held for the lost topics point past the new topics' records: a fresh
            # consumer reads each partition again from its beginning (RewindAfterLoss).
            self._broker_lost()
            await self._restart(reason="the broker lost topics")
        self._look(await self.existing())
        return missing

    async def _unstick(self) -> None:
        outage, self._outage = self._outage, False
        if outage:
            await self._restart(reason="the broker did not answer for a while")
        elif (
            self._stalled()
            and time.monotonic() - self._restarted_at > self.settings.liveness_stall_seconds
        ):
            await self._restart(reason="the consumer stalled with work waiting")

    async def _restart(self, *, reason: str) -> None:
        log.warning("restarting the consumer", reason=reason)
        self._restarted_at = time.monotonic()
        self.consumer_restarts += 1
        await self._restart_consumer()

    async def _create(self, topics: list[str]) -> None:
        admin = self._admin()
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [
                NewTopic(t, 1 if t == self.marker else self.settings.topic_partitions, 1)
                for t in topics
                if t not in existing
            ]
            # Another instance may create the same topic at the same moment: either wins.
            with contextlib.suppress(TopicAlreadyExistsError):
                if wanted:
                    await admin.create_topics(wanted)
        finally:
            await admin.close()

    async def run_forever(self) -> None:
        made = False
        while True:
            if made:  # the first check, at once, makes the marker
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudged.wait(), self.settings.topic_check_seconds)
            self._nudged.clear()
            try:
                await self.check()
                made = True
            except Exception as error:  # the broker is unreachable: /readyz says so already
                self._outage = True
                log.warning("topic check failed; trying again later", error=repr(error))
                await asyncio.sleep(min(1.0, self.settings.topic_check_seconds))

    def _admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=f"{self.settings.service_name}-topic-watch",
            request_timeout_ms=5000,
            **kafka_auth.kafka_client_kwargs(self.settings),
        )


class RewindAfterLoss(ConsumerRebalanceListener):  # type: ignore[misc]
    """After the broker lost its state, the group's committed offsets on the new topics cannot
    be trusted: a consumer still fetching from its old positions may have committed positions
    past records written after the restart. So every partition assigned for the first time
    since the loss is read again from its beginning; the inbox drops what was applied already
    (claim-first), so nothing is applied twice and nothing written after the restart is
    skipped."""

    def __init__(self, consumer: Callable[[], AIOKafkaConsumer | None]) -> None:
        self._consumer = consumer
        self._lost = False
        self._rewound: set[TopicPartition] = set()

    def broker_lost(self) -> None:
        self._lost = True
        self._rewound.clear()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer()
        fresh = [tp for tp in assigned if tp not in self._rewound]
        if not self._lost or consumer is None or not fresh:
            return
        await consumer.seek_to_beginning(*fresh)
        self._rewound.update(fresh)
        log.warning(
            "read again from the beginning after the broker lost its state", partitions=len(fresh)
        )


async def commit_processed(
    consumer: AIOKafkaConsumer, records: Iterable[ConsumerRecord[Any, Any]]
) -> None:
    """Commits the offsets past exactly the records applied, per partition. A plain commit()
    would commit every assigned partition's fetch position, including ones still pointing
    past the end of a topic the broker recreated empty."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    if offsets:
        await consumer.commit(offsets)
