"""What the CLI and the walkthrough talk to: the broker (signed commands out, events in) and the
services' read APIs.

Where things are: environment variables first (CASEWORK_KAFKA_BOOTSTRAP_SERVERS,
CASEWORK_ACTOR_PRIVATE_KEY, CASEWORK_<SERVICE>_URL), then the file `casework up` writes
(`<state dir>/stack.json`), then the embedded stack's generated key (`<state dir>/keys`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from contracts import (
    OUTCOME_SIZE_HEADER,
    Actor,
    Command,
    CommandRejected,
    Envelope,
    Topics,
    registered_types,
)
from deploy.stack import SERVICES, Stack
from services.shared.auth import HEADER, TokenIssuer

STATE_FILE = "stack.json"


class ClientError(Exception):
    """Something the operator must fix (unknown name, bad field, nothing running): printed as a
    message, never as a traceback. Exit code 2 for invalid input, 1 when the stack fails."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# --- Where the stack is ---------------------------------------------------------------------


def write_stack_file(stack: Stack, state_dir: Path) -> Path:
    """Record the running stack's broker, database, key and service URLs for later commands."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    record = {
        "kafka_bootstrap_servers": stack.env.get("CASEWORK_KAFKA_BOOTSTRAP_SERVERS"),
        "database_url": stack.env.get("CASEWORK_DATABASE_URL"),
        "actor_private_key": stack.env.get("CASEWORK_ACTOR_PRIVATE_KEY") or None,
        "services": {name: service.url for name, service in stack.services.items()},
    }
    path.write_text(json.dumps(record, indent=2))
    return path


def remove_stack_file(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATE_FILE).unlink()


@dataclass
class Target:
    """The broker, the actor key and the read APIs a command talks to."""

    bootstrap_servers: str | None
    private_key: str | None
    service_urls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(cls, state_dir: Path) -> Target:
        recorded: dict[str, Any] = {}
        path = state_dir / STATE_FILE
        if path.exists():
            with contextlib.suppress(ValueError):
                recorded = json.loads(path.read_text())
        bootstrap = os.environ.get("CASEWORK_KAFKA_BOOTSTRAP_SERVERS") or recorded.get(
            "kafka_bootstrap_servers"
        )
        key = os.environ.get("CASEWORK_ACTOR_PRIVATE_KEY") or recorded.get("actor_private_key")
        if not key and (state_dir / "keys" / "actor.key").exists():
            key = str((state_dir / "keys" / "actor.key").resolve())
        urls = dict(recorded.get("services") or {})
        for name in SERVICES:
            if url := os.environ.get(f"CASEWORK_{name.upper()}_URL"):
                urls[name] = url
        return cls(bootstrap, key, urls)

    def broker(self) -> str:
        if not self.bootstrap_servers:
            raise ClientError(
                "no broker: start the stack with `casework up` or set "
                "CASEWORK_KAFKA_BOOTSTRAP_SERVERS"
            )
        return self.bootstrap_servers

    def issuer(self) -> TokenIssuer:
        if not self.private_key:
            raise ClientError(
                "no actor key: set CASEWORK_ACTOR_PRIVATE_KEY (PEM or a path) or start the "
                "embedded stack with `casework up`"
            )
        try:
            return TokenIssuer(self.private_key)
        except OSError as exc:
            raise ClientError(f"cannot read the actor key: {exc}") from None

    def url(self, service: str) -> str:
        try:
            return self.service_urls[service].rstrip("/")
        except KeyError:
            raise ClientError(
                f"the {service} service's URL is unknown: set CASEWORK_{service.upper()}_URL or "
                "start the stack with `casework up`"
            ) from None


# --- Commands by name -----------------------------------------------------------------------


def command_types() -> dict[str, type[Command]]:
    return {
        name: model
        for name, model in sorted(registered_types().items())
        if issubclass(model, Command)
    }


def find_command(name: str) -> type[Command]:
    """A command by its type (`allocation.assign_work.v1`), without the version
    (`allocation.assign_work`) or by its bare name when unambiguous (`assign_work`)."""
    types = command_types()
    if name in types:
        return types[name]
    matches = [
        model
        for type_name, model in types.items()
        if type_name.rsplit(".", 1)[0] == name or type_name.split(".")[1] == name
    ]
    if len({m.TYPE.rsplit(".", 1)[0] for m in matches}) == 1:
        return max(matches, key=_version)  # the newest version of one command
    if len(matches) > 1:
        raise ClientError(f"{name!r} is ambiguous: " + ", ".join(sorted(m.TYPE for m in matches)))
    raise ClientError(
        f"unknown command {name!r}; `casework commands` lists them (e.g. {next(iter(types), '')})"
    )


def _version(model: type[Command]) -> int:
    suffix = model.TYPE.rsplit(".", 1)[-1]
    return int(suffix[1:]) if suffix[:1] == "v" and suffix[1:].isdigit() else 0


def command_topic(model: type[Command]) -> str:
    return f"{model.TYPE.split('.', 1)[0]}.commands"


def event_topic(model: type[Command]) -> str:
    return f"{model.TYPE.split('.', 1)[0]}.events"


def parse_fields(pairs: Iterable[str]) -> dict[str, Any]:
    """`name=value` pairs; a value that starts with `[` or `{` is JSON, anything else is a
    string the model coerces (numbers, booleans, UUIDs, dates, enums)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ClientError(f"--field expects name=value, got {pair!r}")
        if value.strip()[:1] in ("[", "{"):
            try:
                values[name.strip()] = json.loads(value)
            except ValueError as exc:
                raise ClientError(f"field {name}: not valid JSON ({exc})") from None
        else:
            values[name.strip()] = value
    return values


def build_command(model: type[Command], values: dict[str, Any]) -> Command:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(command)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ClientError(f"invalid {model.TYPE}: {problems}") from None


# --- The broker -----------------------------------------------------------------------------


def event_topics() -> list[str]:
    events = [t for t in Topics.all() if t.endswith(".events")]
    return events + [Topics.dead_letter(t) for t in Topics.all() if t.endswith(".commands")]


@dataclass
class Received:
    topic: str
    envelope: Envelope | None
    raw: bytes
    headers: dict[str, str]


class Bus:
    """Publishes signed commands; reads the event topics (and the command dead letters) from
    the moment it starts, so a caller waits for exactly what its commands caused."""

    def __init__(self, bootstrap_servers: str, issuer: TokenIssuer | None = None) -> None:
        self._servers = bootstrap_servers
        self._issuer = issuer
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.received: list[Received] = []

    async def start(self, topics: list[str] | None = None, from_beginning: bool = False) -> None:
        try:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self._servers,
                enable_auto_commit=False,
                fetch_max_wait_ms=20,  # an outcome is seen as soon as it is published
                request_timeout_ms=10000,
                connections_max_idle_ms=60000,
            )
            await asyncio.wait_for(self._consumer.start(), 15)
            if self._issuer is not None:
                self._producer = AIOKafkaProducer(
                    bootstrap_servers=self._servers, acks="all", linger_ms=1
                )
                await asyncio.wait_for(self._producer.start(), 15)
        except Exception as exc:
            await self.stop()
            raise ClientError(f"cannot reach the broker at {self._servers}: {exc}", 1) from None
        await self._consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics or event_topics()
            for p in sorted(self._consumer.partitions_for_topic(topic) or {0})
        ]
        self._consumer.assign(partitions)
        if from_beginning:
            await self._consumer.seek_to_beginning(*partitions)
        else:
            for tp, offset in (await self._consumer.end_offsets(partitions)).items():
                self._consumer.seek(tp, offset)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            if not batch:
                continue
            async with self._changed:
                for records in batch.values():
                    for r in records:
                        envelope = None
                        with contextlib.suppress(ValidationError, TypeError):
                            envelope = Envelope.model_validate_json(r.value)
                        headers = {k: v.decode(errors="replace") for k, v in r.headers or []}
                        self.received.append(Received(r.topic, envelope, r.value, headers))
                self._changed.notify_all()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in (self._producer, self._consumer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()

    async def send(
        self, command: Command, actor: Actor, correlation_id: uuid.UUID | None = None
    ) -> Envelope:
        assert self._producer is not None and self._issuer is not None, "started without a key"
        envelope = Envelope.wrap(command, actor=actor, correlation_id=correlation_id)
        key = command.key()
        await self._producer.send_and_wait(
            command_topic(type(command)),
            envelope.model_dump_json().encode(),
            key=key.encode() if key else None,
            headers=[(HEADER, self._issuer.issue(actor).encode())],
        )
        return envelope

    def envelopes(self) -> list[Envelope]:
        return [r.envelope for r in self.received if r.envelope and r.topic.endswith(".events")]

    def caused_by(self, message_id: uuid.UUID) -> list[Envelope]:
        return [e for e in self.envelopes() if e.causation_id == message_id]

    def dead_lettered(self, message_id: uuid.UUID) -> Received | None:
        for r in self.received:
            if r.topic.endswith(".dlq") and r.envelope and r.envelope.message_id == message_id:
                return r
        return None

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("not observed in time")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def outcome(self, sent: Envelope, timeout: float = 30.0) -> list[Envelope]:
        """The events a command caused, once all have arrived: they may sit on several
        partitions, and each carries the size of the whole outcome in a header. Raises
        ClientError if the command was dead-lettered or nothing came in `timeout` seconds."""
        try:
            await self.wait_for(
                lambda: self._whole_outcome(sent.message_id) or self.dead_lettered(sent.message_id),
                timeout,
            )
        except TimeoutError:
            raise ClientError(
                f"no outcome for {sent.type} within {timeout:.0f}s: is its service running?", 1
            ) from None
        if (dead := self.dead_lettered(sent.message_id)) is not None:
            reason = dead.headers.get("dlq-reason", "unknown reason")
            raise ClientError(f"{sent.type} was dead-lettered: {reason}")
        return self._whole_outcome(sent.message_id)

    def _whole_outcome(self, message_id: uuid.UUID) -> list[Envelope]:
        caused = [
            r
            for r in self.received
            if r.envelope and r.topic.endswith(".events") and r.envelope.causation_id == message_id
        ]
        if not caused:
            return []
        size = max(int(r.headers.get(OUTCOME_SIZE_HEADER, "1")) for r in caused)
        distinct = {r.envelope.message_id: r.envelope for r in caused if r.envelope}
        return list(distinct.values()) if len(distinct) >= size else []


def rejection(events: list[Envelope]) -> CommandRejected | None:
    for e in events:
        if e.type == CommandRejected.TYPE:
            return CommandRejected.model_validate(e.payload)
    return None


# --- Read APIs ------------------------------------------------------------------------------


class ReadApi:
    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        self.target = target
        self.http = httpx.Client(timeout=timeout)

    def get(self, service: str, path: str, **params: Any) -> tuple[int, Any]:
        url = f"{self.target.url(service)}{path}"
        try:
            response = self.http.get(url, params=params or None)
        except httpx.HTTPError as exc:
            raise ClientError(f"the {service} service at {url} does not answer: {exc}", 1) from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text}
        return response.status_code, body

    def close(self) -> None:
        self.http.close()
