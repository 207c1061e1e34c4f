"""A command client and an event log over the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import OUTCOME_SIZE_HEADER, Actor, Command, Envelope, Topics
from services.shared.auth import HEADER, TokenIssuer


class EventLog:
    """Reads every event and dead-letter topic from the start, keeps everything in memory."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._servers = bootstrap_servers
        self.records: list[Any] = []
        self._envelopes: list[tuple[Any, Envelope | None]] = []
        self._changed = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,  # an idle fetch returns after this wait: keep outcomes prompt
        )
        await self._consumer.start()
        topics = [t for t in Topics.all() if not t.endswith(".commands")] + [
            Topics.dead_letter(t) for t in Topics.all() if t.endswith(".commands")
        ]
        partitions = []
        for topic in topics:
            for p in self._consumer.partitions_for_topic(topic) or await self._partitions(topic):
                partitions.append(TopicPartition(topic, p))
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run())

    async def _partitions(self, topic: str) -> set[int]:
        assert self._consumer is not None
        await self._consumer._client.force_metadata_update()
        return self._consumer.partitions_for_topic(topic) or {0}

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            if batch:
                async with self._changed:
                    for records in batch.values():
                        self.records.extend(records)
                    self._changed.notify_all()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()

    def envelopes(self, topic_suffix: str = ".events") -> list[Envelope]:
        return [e for r, e in self._parsed() if r.topic.endswith(topic_suffix)]

    def _parsed(self) -> list[tuple[Any, Envelope]]:
        """Event records with their envelopes, parsed once."""
        for record in self.records[len(self._envelopes) :]:
            parsed = None
            if record.topic.endswith(".events"):
                parsed = Envelope.model_validate_json(record.value)
            self._envelopes.append((record, parsed))
        return [(r, e) for r, e in self._envelopes if e is not None]

    def caused_by(self, message_id: uuid.UUID) -> list[Envelope]:
        return [e for _, e in self._parsed() if e.causation_id == message_id]

    def _whole_outcome(self, message_id: uuid.UUID) -> list[Envelope]:
        caused = [(r, e) for r, e in self._parsed() if e.causation_id == message_id]
        sizes = [int(dict(r.headers).get(OUTCOME_SIZE_HEADER, b"1")) for r, _ in caused]
        distinct = {e.message_id: e for _, e in caused}  # a republished event counts once
        return list(distinct.values()) if caused and len(distinct) >= max(sizes) else []

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("condition not met in time")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def outcome(self, message_id: uuid.UUID, timeout: float = 20.0) -> list[Envelope]:
        """The events a message caused (its outcome), once all of them have arrived."""
        return await self.wait_for(lambda: self._whole_outcome(message_id), timeout)  # type: ignore[no-any-return]


class CommandClient:
    """Publishes commands as a given actor, with a signed token in the header."""

    def __init__(self, bootstrap_servers: str, issuer: TokenIssuer) -> None:
        self._servers = bootstrap_servers
        self._issuer = issuer
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self._servers, acks="all", linger_ms=1)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer:
            await self._producer.stop()

    def envelope(self, command: Command, actor: Actor) -> Envelope:
        return Envelope.wrap(command, actor=actor)

    async def send(
        self,
        command: Command,
        actor: Actor,
        *,
        topic: str | None = None,
        token: str | None = None,
        envelope: Envelope | None = None,
    ) -> Envelope:
        envelope = envelope or self.envelope(command, actor)
        await self.send_raw(
            topic or command_topic(command),
            envelope.model_dump_json().encode(),
            key=command.key(),
            token=self._issuer.issue(actor) if token is None else token,
        )
        return envelope

    async def send_raw(
        self, topic: str, value: bytes, *, key: str | None = None, token: str | None = None
    ) -> None:
        assert self._producer is not None
        headers = [(HEADER, token.encode())] if token else []
        await self._producer.send_and_wait(
            topic, value, key=key.encode() if key else None, headers=headers
        )


def command_topic(command: Command) -> str:
    return f"{command.TYPE.split('.', 1)[0]}.commands"
