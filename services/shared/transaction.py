"""The one transaction protocol every handler and background task works through.

A `Transaction` is one database transaction's work: its connection (`conn`, staging inserts
to be written together), the clock (`now`), a per-transaction memo for read caches, and the
events it causes (`emit`, written to the outbox with the state). The consumer gives each
consumed message a `HandlerContext` (a transaction that also carries the message, its verified
actor and roles); background tasks (timers, delivery workers) get a plain `Transaction` from
`ServiceRuntime.transaction()`. `Transaction.for_test` builds one with no database behind it,
for handler unit tests over fake repositories (cosmicpython's `FakeTransaction`).

The `Dispatcher` maps message types to their handlers, several per type, run in the order they
were registered (a service's own handler after the shared directory projection's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import Actor, Envelope, Event, Message
from services.shared import db, outbox

M = TypeVar("M", bound=Message)


class Connection(Protocol):
    """What handlers and repositories may do with the transaction's connection."""

    memo: dict[str, Any]
    wrote: bool

    async def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]: ...

    async def scalar(self, statement: Any, parameters: Any = None) -> Any: ...

    async def scalars(self, statement: Any, parameters: Any = None) -> sa.ScalarResult[Any]: ...

    def stage(
        self, statement: Any, row: dict[str, Any], dedupe_on: tuple[str, ...] = ()
    ) -> None: ...


class StagedConnection:
    """The transaction's connection as handlers see it. Rows staged with `stage()` are written
    together, one multi-row statement per statement kind, before the next statement of any
    kind runs and at the end of the batch: a batch of N creations costs a few round trips,
    not N. Any read therefore sees every staged row."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.raw = conn
        self.wrote = False
        # Read caches that live as long as this transaction (e.g. directory lookups repeated
        # by many commands of one batch); keyed by the module that fills them.
        self.memo: dict[str, Any] = {}
        self._pending: list[tuple[Any, dict[str, Any], tuple[str, ...]]] = []

    def stage(self, statement: Any, row: dict[str, Any], dedupe_on: tuple[str, ...] = ()) -> None:
        """Queue one row for `statement` (an INSERT, possibly with ON CONFLICT). Rows of an
        upsert that share the `dedupe_on` key collapse to the last one (one statement cannot
        touch a row twice)."""
        self.wrote = True
        self._pending.append((statement, row, dedupe_on))

    async def flush(self) -> None:
        """Writes the staged rows, one statement per statement object, in the order each was
        first staged (so stage only rows whose order across tables does not matter)."""
        pending, self._pending = self._pending, []
        groups: dict[int, tuple[Any, tuple[str, ...], list[dict[str, Any]]]] = {}
        for statement, row, dedupe_on in pending:
            groups.setdefault(id(statement), (statement, dedupe_on, []))[2].append(row)
        for statement, dedupe_on, rows in groups.values():
            if dedupe_on:
                rows = list({tuple(r[k] for k in dedupe_on): r for r in rows}.values())
            await db.insert_many(self.raw, statement, rows)

    def discard(self) -> None:
        self._pending.clear()

    async def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
        await self.flush()
        if isinstance(statement, sa.Insert | sa.Update | sa.Delete):
            self.wrote = True
        return await self.raw.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def scalars(self, statement: Any, parameters: Any = None) -> sa.ScalarResult[Any]:
        return (await self.execute(statement, parameters)).scalars()

    def in_nested_transaction(self) -> bool:
        return self.raw.in_nested_transaction()

    def begin_nested(self) -> Any:
        return self.raw.begin_nested()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class NoDatabase:
    """The connection of a test transaction: a handler unit test runs over fake repositories,
    so any statement reaching here is a test that touched the database by mistake."""

    def __init__(self) -> None:
        self.memo: dict[str, Any] = {}
        self.wrote = False

    async def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
        raise AssertionError(f"a unit test reached the database: {statement}")

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        raise AssertionError(f"a unit test reached the database: {statement}")

    async def scalars(self, statement: Any, parameters: Any = None) -> sa.ScalarResult[Any]:
        raise AssertionError(f"a unit test reached the database: {statement}")

    def stage(self, statement: Any, row: dict[str, Any], dedupe_on: tuple[str, ...] = ()) -> None:
        raise AssertionError(f"a unit test reached the database: {statement}")


@dataclass(kw_only=True)
class Transaction:
    """One transaction's work: state changes on `conn`, events via `emit`, both committed
    together (the events through the outbox)."""

    conn: Any  # a Connection (StagedConnection in service, NoDatabase in unit tests)
    now: datetime
    event_topic: str
    cause: Envelope | None = None  # the consumed message these events are caused by
    emitted: list[outbox.OutboxRecord] = field(default_factory=list)

    @classmethod
    def for_test(cls, now: datetime, event_topic: str = "test.events") -> Transaction:
        return cls(conn=NoDatabase(), now=now, event_topic=event_topic)

    @property
    def memo(self) -> dict[str, Any]:
        """Read caches that live as long as this transaction."""
        return self.conn.memo  # type: ignore[no-any-return]

    @property
    def dirty(self) -> bool:
        """Whether anything has been written (or staged) yet."""
        return bool(getattr(self.conn, "wrote", False))

    async def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
        return await self.conn.execute(statement, parameters)  # type: ignore[no-any-return]

    def stage(self, statement: Any, row: dict[str, Any], dedupe_on: tuple[str, ...] = ()) -> None:
        """Queue an insert to be written with others of its kind (see StagedConnection)."""
        self.conn.stage(statement, row, dedupe_on)

    def emit(self, event: Event, *, topic: str | None = None, key: str | None = None) -> Envelope:
        """Queue an event; it is written to the outbox with the state."""
        envelope = (
            self.cause.caused(event, occurred_at=self.now)
            if self.cause is not None
            else Envelope.wrap(event, occurred_at=self.now)
        )
        self.emitted.append(
            outbox.OutboxRecord.of(topic or self.event_topic, envelope, key or event.key())
        )
        return envelope

    @property
    def events(self) -> list[Event]:
        """The events emitted so far, as models (for tests and logs)."""
        return [
            Envelope.model_validate_json(record.value).open()  # type: ignore[misc]
            for record in self.emitted
        ]


@dataclass(kw_only=True)
class HandlerContext(Transaction, Generic[M]):
    """What a handler gets: a transaction, the message, its verified actor and the application
    roles of their sign-in (commands only)."""

    envelope: Envelope
    message: M
    actor: Actor | None
    roles: frozenset[str] = frozenset()

    @classmethod
    def for_message(
        cls,
        message: M,
        *,
        now: datetime,
        actor: Actor | None = None,
        roles: frozenset[str] = frozenset(),
        event_topic: str = "test.events",
    ) -> HandlerContext[M]:
        """A handler unit test's context: the message, as `actor`, with no database."""
        envelope = Envelope.wrap(message, actor=actor, occurred_at=now)
        return cls(
            conn=NoDatabase(),
            now=now,
            event_topic=event_topic,
            cause=envelope,
            envelope=envelope,
            message=message,
            actor=actor,
            roles=roles,
        )


Handler = Callable[[HandlerContext[Any]], Awaitable[None]]


class Dispatcher:
    """Maps message types to their handlers, several per type, run in registration order.
    Commands need a verified actor; events are trusted for the topic they come from (TR04:
    only their owner's event topic)."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Handler]] = {}

    def on(
        self, message_type: type[M]
    ) -> Callable[[Callable[[HandlerContext[M]], Awaitable[None]]], Any]:
        def register(fn: Callable[[HandlerContext[M]], Awaitable[None]]) -> Any:
            self.add(message_type.TYPE, fn)  # type: ignore[arg-type]
            return fn

        return register

    def add(self, type_name: str, handler: Handler) -> None:
        self.handlers.setdefault(type_name, []).append(handler)

    def handles(self, type_name: str) -> bool:
        return type_name in self.handlers

    def without(self, message_type: type[Message]) -> Dispatcher:
        """A copy without `message_type`'s handlers (to bind them to configuration instead)."""
        copy = Dispatcher()
        copy.handlers = {
            name: list(handlers)
            for name, handlers in self.handlers.items()
            if name != message_type.TYPE
        }
        return copy

    async def dispatch(self, ctx: HandlerContext[Any]) -> None:
        for handler in self.handlers[ctx.envelope.type]:
            await handler(ctx)
