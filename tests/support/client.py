"""A command client and an event log over the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from casework_testing.edge import signed_record
from contracts import Actor, Command, Envelope, Event, Topics
from deploy.client import Arrivals, poll
from deploy.identity import SignedInUsers
from services.edge.app import IDEMPOTENCY_HEADER, POSITION_HEADER, Edge, idempotent_message_id
from services.shared.auth import SigningKey
from services.shared.outcomes import whole_outcome
from services.shared.settings import Settings


class EventLog(Arrivals):
    """Reads every event and dead-letter topic from the start, keeps everything in memory."""

    def __init__(self, bootstrap_servers: str) -> None:
        super().__init__()
        self._servers = bootstrap_servers
        self.records: list[Any] = []
        self._envelopes: list[tuple[Any, Envelope | None]] = []
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
                await self.arrived(functools.partial(self._keep, batch))

    def _keep(self, batch: dict[Any, list[Any]]) -> None:
        for records in batch.values():
            self.records.extend(records)

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
        """The distinct events a message caused, as a subscriber with an inbox sees them (an
        outcome announced again for a duplicate command is the same messages)."""
        caused = {e.message_id: e for _, e in self._parsed() if e.causation_id == message_id}
        return list(caused.values())

    def _whole_outcome(self, message_id: uuid.UUID) -> list[Envelope]:
        return whole_outcome(
            ({k: bytes(v).decode() for k, v in r.headers or ()}, e)
            for r, e in self._parsed()
            if e.causation_id == message_id
        )

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        return await super().wait_for(predicate, timeout)

    async def outcome(self, message_id: uuid.UUID, timeout: float = 20.0) -> list[Envelope]:
        """The events a message caused (its outcome), once all of them have arrived."""
        return await self.wait_for(lambda: self._whole_outcome(message_id), timeout)  # type: ignore[no-any-return]


async def wait_until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 20.0) -> Any:
    """`await check()` once truthy, for read sides that announce nothing to wait on (a
    projection); fails naming `what` after `timeout` seconds."""
    try:
        return await poll(check, timeout, interval=0.05)
    except TimeoutError:
        raise TimeoutError(f"not in time: {what}") from None


class CommandClient:
    """Sends commands as people do: signed in through the identity provider, through the edge's
    command API, which publishes them with an assertion bound to each message. `send_raw`
    publishes bytes straight to a topic, as another service (an event) or an attacker would."""

    def __init__(
        self, bootstrap_servers: str, edge: httpx.AsyncClient, users: SignedInUsers
    ) -> None:
        self._servers = bootstrap_servers
        self.edge = edge
        self.users = users
        self._producer: AIOKafkaProducer | None = None
        self._idempotency_keys: dict[uuid.UUID, str] = {}

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self._servers, acks="all", linger_ms=1)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer:
            await self._producer.stop()

    def envelope(self, command: Command, actor: Actor) -> Envelope:
        """The envelope `send(..., envelope=)` will publish, with its message id known in
        advance: sending it twice sends the same message twice (the edge's idempotency key)."""
        key = uuid.uuid4().hex
        message_id = idempotent_message_id(actor.user_id, command.TYPE, key)
        self._idempotency_keys[message_id] = key
        return Envelope.wrap(command, actor=actor).model_copy(update={"message_id": message_id})

    async def send(
        self, command: Command, actor: Actor, *, envelope: Envelope | None = None
    ) -> Envelope:
        """Publishes through the edge as the signed-in `actor.user_id`, acting in
        `actor.position_id`; returns the envelope the edge published."""
        headers = await self.users.headers(actor.user_id)
        if actor.position_id:
            headers[POSITION_HEADER] = actor.position_id
        if envelope is not None:
            headers[IDEMPOTENCY_HEADER] = self._idempotency_keys[envelope.message_id]
        response = await self.edge.post(
            f"/commands/{command.TYPE}",
            params={"wait": "false"},
            json=command.model_dump(mode="json"),
            headers=headers,
        )
        assert response.status_code == 202, f"edge refused {command.TYPE}: {response.text}"
        return Envelope.model_validate(response.json()["command"])

    async def publish_as_edge(
        self, key: SigningKey, commands: Sequence[Command], actor: Actor, topic: str
    ) -> list[Envelope]:
        """Publishes many commands at once, each signed as the edge signs it: for a test's
        setup, where the edge's HTTP round trip per command is not what is tested."""
        assert self._producer is not None
        envelopes = [Envelope.wrap(command, actor=actor) for command in commands]
        sent = []
        for envelope, command in zip(envelopes, commands, strict=True):
            value, headers = signed_record(key, envelope, topic)
            sent.append(
                await self._producer.send(
                    topic, value, key=(command.key() or "").encode(), headers=headers
                )
            )
        await asyncio.gather(*sent)
        return envelopes

    async def publish_signed(
        self,
        key: SigningKey,
        envelope: Envelope,
        topic: str,
        *,
        value: bytes | None = None,
        record_key: str = "k",
        **claims: Any,
    ) -> None:
        """Publishes one envelope straight to `topic`, signed as the edge signs it (`value`: the
        record's bytes, if not the envelope's JSON; `claims`: see casework_testing.edge)."""
        value, headers = signed_record(key, envelope, topic, value=value, **claims)
        await self.send_raw(topic, value, key=record_key, headers=headers)

    async def publish_event(self, topic: str, event: Event) -> Envelope:
        """Publishes an event as the service that owns it would (events carry no assertion)."""
        envelope = Envelope.wrap(event)
        await self.send_raw(topic, envelope.model_dump_json().encode(), key=event.key())
        return envelope

    async def send_raw(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(
            topic,
            value,
            key=key.encode() if key else None,
            headers=headers or [],
            timestamp_ms=timestamp_ms,
        )


class ThroughEdge:
    """Commands through the edge with their whole outcome from the event log: the sender of the
    walkthrough's driver (`deploy.walkthrough.driver`), so tests drive services as it does."""

    def __init__(self, commands: CommandClient, log: EventLog, timeout: float = 20.0) -> None:
        self.commands, self.log, self.timeout = commands, log, timeout

    async def send(self, command: Command, actor: Actor) -> tuple[Envelope, list[Envelope]]:
        sent = await self.commands.send(command, actor)
        return sent, await self.log.outcome(sent.message_id, self.timeout)


class running_edge:
    """An edge started in-process; its HTTP API as an httpx client."""

    def __init__(self, settings: Settings) -> None:
        self.edge = Edge(settings)

    async def __aenter__(self) -> httpx.AsyncClient:
        await self.edge.start()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.edge.asgi(manage_lifecycle=False)),
            base_url="http://edge",
        )
        return self.http

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()
        await self.edge.stop()


@contextlib.asynccontextmanager
async def clients_on(
    bootstrap: str, edge_settings: Settings, users: SignedInUsers
) -> AsyncIterator[tuple[CommandClient, EventLog]]:
    """A command client through an edge of its own and an event log, on a broker of a test's
    own (isolated infrastructure)."""
    async with running_edge(edge_settings) as edge:
        client, log = CommandClient(bootstrap, edge, users), EventLog(bootstrap)
        await client.start()
        await log.start()
        try:
            yield client, log
        finally:
            await log.stop()
            await client.stop()
