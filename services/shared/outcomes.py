"""Waiting for a command's outcome: the events it caused (or its rejection) on the event topics,
or its dead letter. Each event of an outcome carries the outcome's size in a header, so a waiter
knows when it has all of them wherever their keys put them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from contracts import OUTCOME_SIZE_HEADER, Envelope, Topics


def whole_outcome(caused: Iterable[tuple[Mapping[str, str], Envelope]]) -> list[Envelope]:
    """The distinct events of one outcome once all have arrived, else []. `caused`: the headers
    and envelope of each event seen with that causation id (a republished event counts once)."""
    caused = list(caused)
    if not caused:
        return []
    size = max(int(headers.get(OUTCOME_SIZE_HEADER, "1")) for headers, _ in caused)
    distinct = {e.message_id: e for _, e in caused}
    return list(distinct.values()) if len(distinct) >= size else []


def outcome_topics() -> list[str]:
    """Where outcomes appear: every event topic, and the dead letters of the command topics."""
    return [t for t in Topics.all() if t.endswith(".events")] + [
        Topics.dead_letter(t) for t in Topics.all() if t.endswith(".commands")
    ]


@dataclass
class Outcome:
    events: list[Envelope] = field(default_factory=list)
    dead_letter_reason: str | None = None


@dataclass
class _Waiting:
    caused: list[tuple[dict[str, str], Envelope]] = field(default_factory=list)
    dead: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class OutcomeWatcher:
    """Reads the outcome topics from the moment it starts (no consumer group: every instance of
    an edge sees every outcome) and keeps only what someone waits for."""

    def __init__(self, consumer_kwargs: dict[str, Any]) -> None:
        self._kwargs = consumer_kwargs
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[uuid.UUID, _Waiting] = {}

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False, fetch_max_wait_ms=10, **self._kwargs
        )
        await self._consumer.start()
        await self._consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(topic, p)
            for topic in outcome_topics()
            for p in sorted(self._consumer.partitions_for_topic(topic) or {0})
        ]
        self._consumer.assign(partitions)
        for tp, offset in (await self._consumer.end_offsets(partitions)).items():
            self._consumer.seek(tp, offset)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    def expect(self, message_id: uuid.UUID) -> None:
        """Call before publishing, so that no part of the outcome can be missed."""
        self._waiting.setdefault(message_id, _Waiting())

    async def outcome(self, message_id: uuid.UUID, timeout: float) -> Outcome | None:
        waiting = self._waiting.setdefault(message_id, _Waiting())
        try:
            async with asyncio.timeout(timeout):
                await waiting.done.wait()
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(message_id, None)
        return Outcome(whole_outcome(waiting.caused), waiting.dead)

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self._take(records)

    def _take(self, records: Sequence[Any]) -> None:
        for record in records:
            try:
                envelope = Envelope.model_validate_json(record.value or b"")
            except ValidationError:
                continue
            headers = {k: bytes(v).decode(errors="replace") for k, v in record.headers or ()}
            if record.topic.endswith(".dlq"):
                waiting = self._waiting.get(envelope.message_id)
                if waiting is not None:
                    waiting.dead = headers.get("dlq-reason", "dead-lettered")
                    waiting.done.set()
                continue
            if envelope.causation_id is None:
                continue
            waiting = self._waiting.get(envelope.causation_id)
            if waiting is not None:
                waiting.caused.append((headers, envelope))
                if whole_outcome(waiting.caused):
                    waiting.done.set()
