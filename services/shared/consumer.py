"""Batch consumption: a fetched batch of records is applied in one database transaction.

For each record: parse the envelope and payload (an event's payload tolerantly: fields newer
than this reader are ignored; failure, or a record over the size limit: dead-letter topic with
the reason, TR08), verify the actor assertion of a command (TR02;
failure: rejection), claim its id in the inbox (a record already claimed is a redelivery: a
command's recorded outcome is announced again, anything else is skipped), run the handler, and
write the events it emits to the outbox and a command's outcome beside it. Claims, outbox rows
and outcomes go in the same transaction as the state; Kafka offsets are committed by the caller
only after that transaction commits. Claiming first means two instances that briefly hold the
same partition cannot both apply a record: the second waits on the first's claim and skips.

If the batch transaction fails, the batch is applied again one record per transaction, so that
one poison record is dead-lettered alone and the rest still apply. Errors that are really
transient (serialization failures, deadlocks, exhausted resources) are retried a few times
first; a lost database connection propagates: the caller backs off and re-reads."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog
from aiokafka import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts import (
    OUTCOME_SIZE_HEADER,
    Actor,
    Command,
    CommandRejected,
    Envelope,
    Message,
    Topics,
)
from contracts.envelope import message_class
from contracts.limits import MAX_RECORD_BYTES
from contracts.subscribe import tolerant
from services.shared import auth, logs, metrics, outbox
from services.shared.rules import RuleViolation
from services.shared.transaction import Dispatcher, HandlerContext, StagedConnection

log = logs.get(__name__)

# Rejection codes of the plumbing itself; business rules use their RULES.md ids.
RULE_ASSERTION = "TR02"
RULE_BUS = "TR04"
RULE_SCHEMA = "schema"
RULE_INTERNAL = "internal-error"
RULE_SIZE = "TR08"

# Headers of a consumed record that are credentials: never copied to a dead letter (TR07).
CREDENTIAL_HEADERS = frozenset({auth.HEADER})
# A dead-letter reason is for people: long enough to say what failed, never the whole input.
REASON_MAX = 2_000
# How often a batch that failed for a transient reason is tried again before its records are
# tried one by one (and, failing still, dead-lettered).
TRANSIENT_ATTEMPTS = 4

Clock = Callable[[], datetime]
M = TypeVar("M", bound=Message)


def utc_now() -> datetime:
    return datetime.now(UTC)


class _DirtyRejection(Exception):
    """A handler wrote state and then refused: the batch is redone one record at a time so the
    refused command's writes roll back alone."""


@dataclass
class _Item:
    record: ConsumerRecord[Any, Any]
    inbox_id: uuid.UUID  # the id claimed in the inbox
    envelope: Envelope | None = None
    message: Message | None = None
    dead_reason: str | None = None
    ignored: bool = False
    # Commands: the verified actor and roles, or why the assertion was refused (TR02).
    actor: Actor | None = None
    roles: frozenset[str] = frozenset()
    refusal: str | None = None

    @property
    def is_command(self) -> bool:
        return isinstance(self.message, Command)

    @property
    def key(self) -> str | None:
        key = self.record.key
        return key.decode(errors="replace") if isinstance(key, bytes) else key

    def header(self, name: str) -> bytes | None:
        for key, value in self.record.headers or ():
            if key == name:
                return bytes(value)
        return None


def _record_id(record: ConsumerRecord[Any, Any]) -> uuid.UUID:
    """The inbox id of a record without a message id of its own: its place and its content, so
    a record at the same offset of a recreated topic is not taken for an earlier one."""
    digest = hashlib.sha256(record.value or b"").hexdigest()
    place = f"{record.topic}:{record.partition}:{record.offset}:{record.timestamp}"
    return uuid.uuid5(uuid.NAMESPACE_URL, f"kafka:{place}:{digest}")


def _refusal_id(message_id: uuid.UUID, assertion: bytes | None) -> uuid.UUID:
    """The inbox id of a command refused for its assertion (TR02): bound to that assertion, so
    the refusal does not use up the command's id and the same command with a valid assertion
    is still applied, while a redelivery of the refused record is not refused twice."""
    return uuid.uuid5(message_id, "refused:" + hashlib.sha256(assertion or b"").hexdigest())


# SQLSTATEs after which the same statement may well succeed: serialization failure, deadlock,
# insufficient resources. Connection loss (class 08, server shutting down 57P01-57P03) is
# handled apart: nothing can be written until the database is back.
_TRANSIENT_STATES = ("40001", "40P01", "53")
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(getattr(exc, "orig", None), "sqlstate", None) or "")


def is_connection_lost(exc: BaseException) -> bool:
    """The database is out of reach: the caller backs off and reads the batch again."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or _sqlstate(exc).startswith(_CONNECTION_STATES)
    return isinstance(exc, OSError | ConnectionError | TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """A failure that says the database was busy, not that the message is bad: worth a retry.
    Anything else (a statement the database refuses, a driver limit, a bug) is not: the record
    is dead-lettered rather than re-read forever (TR08)."""
    return isinstance(exc, DBAPIError) and _sqlstate(exc).startswith(_TRANSIENT_STATES)


class BatchProcessor:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        outbox_table: sa.Table,
        inbox_table: sa.Table,
        outcome_table: sa.Table,
        dispatcher: Dispatcher,
        verifier: auth.AssertionVerifier,
        event_topic: str,
        clock: Clock = utc_now,
        on_commit: Callable[[], None] = lambda: None,
        failpoint: str | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
        publisher: outbox.OutboxRelay | None = None,
    ) -> None:
        """`publisher`: a relay publishing from memory (`OutboxRelay.from_memory`): each
        committed transaction's records are handed to it, and the rows it has published are
        deleted by the next batch's transaction."""
        self._engine = engine
        self._outbox = outbox_table
        self._inbox = inbox_table
        self._outcomes = outcome_table
        self._dispatcher = dispatcher
        self._verifier = verifier
        self._event_topic = event_topic
        self._clock = clock
        self._on_commit = on_commit
        self._failpoint = failpoint
        self._max_record_bytes = max_record_bytes
        self._publisher = publisher
        # Committed by this `process` call and not yet handed to the publisher.
        self._committed: list[tuple[list[outbox.OutboxRecord], list[int], bool]] = []
        self._claim_statement = (
            pg_insert(inbox_table)
            .from_select(
                ["message_id"],
                sa.select(sa.func.unnest(sa.cast(sa.bindparam("ids"), ARRAY(UUID(as_uuid=True))))),
            )
            .on_conflict_do_nothing()
            .returning(inbox_table.c.message_id)
        )
        self._write_statement = _write_statement(outbox_table, outcome_table)

    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        items = [self._parse(r) for r in records]
        started = time.perf_counter()
        try:
            await _retrying(lambda: self._apply_in_transaction(items, isolate=False))
        except Exception as exc:
            if is_connection_lost(exc):
                raise
            if not isinstance(exc, _DirtyRejection):
                log.warning("batch failed; applying one record at a time", error=_brief(exc))
            for item in items:
                await self._process_alone(item)
        self._hit("after_commit_before_publish")
        committed, self._committed = self._committed, []
        if self._publisher is not None:
            for records, ids, older_unknown in committed:
                self._publisher.committed(records, ids, older_unknown=older_unknown)
        metrics.commands_committed(i.envelope for i in items if _is_command_topic(i.record))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        self._on_commit()

    async def _apply_in_transaction(self, items: list[_Item], *, isolate: bool) -> None:
        done = self._publisher.published_ids() if self._publisher else []
        known = self._publisher.known_ids() if self._publisher else []
        async with self._engine.begin() as conn:
            written = await self._apply(conn, items, isolate=isolate, done=done, known=known)
            if not isolate:
                self._hit("before_commit")
        if self._publisher is not None:
            self._publisher.deleted(done)
        if written[0]:
            self._committed.append(written)

    async def _process_alone(self, item: _Item) -> None:
        try:
            await _retrying(lambda: self._apply_in_transaction([item], isolate=True))
        except Exception as exc:
            if is_connection_lost(exc):
                raise
            reference = uuid.uuid4()
            log.exception("handler failed; dead-lettering", topic=item.record.topic, ref=reference)
            item.dead_reason = f"handler failed (reference {reference}): {_brief(exc)}"
            await self._apply_in_transaction([item], isolate=True)

    def _parse(self, record: ConsumerRecord[Any, Any]) -> _Item:
        metrics.CONSUMED.labels(record.topic).inc()
        size = len(record.value or b"")
        if size > self._max_record_bytes:
            item = _Item(record=record, inbox_id=_record_id(record))
            item.dead_reason = (
                f"TR08: a record of {size} bytes is over the limit of {self._max_record_bytes}"
            )
            return item
        try:
            envelope = Envelope.model_validate_json(record.value or b"")
        except ValidationError as exc:
            item = _Item(record=record, inbox_id=_record_id(record))
            item.dead_reason = f"envelope does not parse: {_short(exc)}"
            return item
        # A record with a message id is claimed by it (its place and digest are not needed).
        item = _Item(record=record, inbox_id=envelope.message_id, envelope=envelope)
        if not self._dispatcher.handles(envelope.type) and not _is_command_topic(record):
            # Another service's event topic carries many types; this service reads only some.
            item.ignored = True
            return item
        try:
            item.message = _read(message_class(envelope.type), envelope.payload)
        except KeyError as exc:
            item.dead_reason = str(exc.args[0])
        except ValidationError as exc:
            item.dead_reason = f"payload of {envelope.type} does not validate: {_short(exc)}"
        else:
            item.dead_reason = _misrouted(record.topic, item.message) or (
                None
                if self._dispatcher.handles(envelope.type)
                else f"no handler for {envelope.type} on {record.topic}"
            )
        if item.dead_reason is None and item.is_command:
            self._verify(item)
        return item

    def _verify(self, item: _Item) -> None:
        """TR02: the command's assertion, checked before anything is claimed or written."""
        assert item.envelope is not None
        assertion = item.header(auth.HEADER)
        try:
            asserted = self._verifier.verify(
                assertion,
                value=item.record.value or b"",
                topic=item.record.topic,
                message_id=item.envelope.message_id,
                accepted_at=item.record.timestamp / 1000,
            )
            if item.envelope.actor != asserted.actor:
                raise auth.AssertionRefused("envelope actor differs from the asserted actor")
        except auth.AssertionRefused as exc:
            log.warning("command refused: assertion", reason=str(exc), type=item.envelope.type)
            item.refusal = str(exc)
            item.inbox_id = _refusal_id(item.envelope.message_id, assertion)
            return
        item.actor, item.roles = asserted.actor, asserted.roles

    async def _claim(self, conn: AsyncConnection, items: list[_Item]) -> set[uuid.UUID]:
        """Inserts the inbox rows first: the ids returned are this transaction's to apply. A
        row another transaction holds uncommitted makes this one wait for it, then skip."""
        ids = list(dict.fromkeys(item.inbox_id for item in items if not item.ignored))
        if not ids:
            return set()
        # One statement of the same text whatever the batch's size (compiled and prepared
        # once): the ids as one array.
        return set((await conn.execute(self._claim_statement, {"ids": ids})).scalars().all())

    async def _apply(
        self,
        conn: AsyncConnection,
        items: list[_Item],
        *,
        isolate: bool,
        done: list[int],
        known: list[int],
    ) -> tuple[list[outbox.OutboxRecord], list[int], bool]:
        """Applies the items; returns the outbox records written, their row ids and whether
        older rows this service's relay does not know of were in the outbox."""
        claimed = await self._claim(conn, items)
        staged = StagedConnection(conn)
        records: list[outbox.OutboxRecord] = []
        outcomes: list[dict[str, Any]] = []
        announce: list[uuid.UUID] = []
        for item in items:
            if item.ignored:
                continue
            if item.inbox_id not in claimed:
                metrics.DUPLICATES.inc()
                if item.is_command and item.refusal is None and item.envelope is not None:
                    announce.append(item.envelope.message_id)
                continue
            claimed.discard(item.inbox_id)  # a second copy in the same batch is a duplicate
            structlog.contextvars.bind_contextvars(
                correlation_id=str(item.envelope.correlation_id) if item.envelope else None
            )
            if item.dead_reason is not None:
                outcome = self._dead_letter(item)
            elif item.refusal is not None:
                outcome = [self._rejection(item, RULE_ASSERTION, item.refusal)]
            else:
                outcome = await self._handle(staged, item, isolate=isolate)
            records.extend(outcome)
            if item.envelope is not None and _is_command_topic(item.record):
                if item.refusal is None:
                    outcomes.append(_outcome_row(item.envelope.message_id, outcome))
        await staged.flush()
        records.extend(await self._announced(conn, announce))
        if not (records or outcomes or done):
            return records, [], False
        # The outbox rows, the outcomes and the deletion of rows already published: one
        # statement, one round trip.
        row = (
            await conn.execute(
                self._write_statement,
                {
                    **outbox.record_arrays(records),
                    "cids": [o["command_id"] for o in outcomes],
                    "recs": [json.dumps(o["records"]) for o in outcomes],
                    "done": done,
                    "known": known,
                },
            )
        ).one()
        return records, list(row.ids or []), bool(row.older)

    async def _announced(
        self, conn: AsyncConnection, command_ids: list[uuid.UUID]
    ) -> list[outbox.OutboxRecord]:
        """The recorded outcomes of commands received again: published again as they were (the
        same message ids, so subscribers' inboxes drop them), so a caller who sent the command
        twice finds its outcome."""
        if not command_ids:
            return []
        rows = await conn.execute(
            sa.select(self._outcomes.c.records).where(self._outcomes.c.command_id.in_(command_ids))
        )
        return [_record_of(stored) for (records,) in rows for stored in records]

    async def _handle(
        self, conn: StagedConnection, item: _Item, *, isolate: bool
    ) -> list[outbox.OutboxRecord]:
        assert item.envelope is not None and item.message is not None
        envelope, message = item.envelope, item.message
        actor = item.actor if item.is_command else envelope.actor
        conn.wrote = False
        envelope = envelope.model_copy(update={"actor": actor})
        ctx: HandlerContext[Any] = HandlerContext(
            conn=conn,
            now=self._clock(),
            event_topic=self._event_topic,
            cause=envelope,
            envelope=envelope,
            message=message,
            actor=actor,
            roles=item.roles,
        )
        try:
            if isolate:
                try:
                    async with conn.begin_nested():
                        await self._run(ctx)
                        await conn.flush()  # staged rows belong inside the savepoint
                except _Refused:
                    conn.discard()
                    raise
            else:
                await self._run(ctx)
        except _Refused as refused:
            metrics.REJECTED.labels(refused.violation.rule).inc()
            return [self._rejection(item, refused.violation.rule, refused.violation.reason)]
        metrics.APPLIED.labels(envelope.type).inc()
        return _outcome(ctx.emitted)

    async def _run(self, ctx: HandlerContext[Any]) -> None:
        try:
            await self._dispatcher.dispatch(ctx)
            self._check_sizes(ctx.emitted)
        except RuleViolation as violation:
            if ctx.dirty and not ctx.conn.in_nested_transaction():
                raise _DirtyRejection() from violation
            raise _Refused(violation) from violation

    def _check_sizes(self, emitted: list[outbox.OutboxRecord]) -> None:
        """TR08: an outcome that could not be published is refused with the command, before it
        is committed, rather than left to stall the relay."""
        for record in emitted:
            if record.size() > self._max_record_bytes:
                raise RuleViolation(
                    RULE_SIZE,
                    f"its outcome ({record.headers.get('type')}) would be {record.size()} "
                    f"bytes, over the limit of {self._max_record_bytes}: send it in parts",
                )

    def _rejection(self, item: _Item, rule: str, reason: str) -> outbox.OutboxRecord:
        assert item.envelope is not None
        rejected = CommandRejected(
            command_id=item.envelope.message_id,
            command_type=item.envelope.type,
            rule=rule,
            reason=reason[:REASON_MAX],
        )
        envelope = item.envelope.caused(rejected, occurred_at=self._clock())
        # Derived from what was claimed, so a redelivered record is rejected with the same id.
        envelope = envelope.model_copy(update={"message_id": uuid.uuid5(item.inbox_id, rule)})
        return _outcome([outbox.OutboxRecord.of(self._event_topic, envelope, item.key)])[0]

    def _dead_letter(self, item: _Item) -> list[outbox.OutboxRecord]:
        record, reason = item.record, (item.dead_reason or "")[:REASON_MAX]
        metrics.DEAD_LETTERED.labels(record.topic).inc()
        log.warning("dead-lettered", topic=record.topic, offset=record.offset, reason=reason)
        value = record.value or b""
        headers = {
            key: bytes(raw).decode(errors="replace")
            for key, raw in record.headers or ()
            if key not in CREDENTIAL_HEADERS
        }
        headers |= {
            "dlq-reason": reason,
            "dlq-topic": record.topic,
            "dlq-partition": str(record.partition),
            "dlq-offset": str(record.offset),
            "dlq-sha256": hashlib.sha256(value).hexdigest(),
        }
        # TR08: a dead letter always fits; a copy too big is cut, and the headers say where
        # the whole record is and how to check it.
        room = self._max_record_bytes - outbox.record_size(b"", item.key, headers) - 1_024
        if len(value) > room:
            headers |= {"dlq-truncated": "true", "dlq-original-bytes": str(len(value))}
            value = value[: max(room, 0)]
        out = [outbox.OutboxRecord(Topics.dead_letter(record.topic), item.key, value, headers)]
        # A caller whose command we could identify also gets an answer on the event topic.
        if item.envelope is not None and _is_command_topic(record):
            rule = (
                RULE_INTERNAL
                if reason.startswith("handler failed")
                else RULE_BUS
                if reason.startswith("TR04")
                else RULE_SCHEMA
            )
            # The caller is told what failed, never the driver's or the handler's own text.
            told = reason.split(":", 1)[0] + ": kept on the dead-letter topic for an operator"
            out.append(self._rejection(item, rule, told if rule == RULE_INTERNAL else reason))
        return out

    def _hit(self, point: str) -> None:
        if self._failpoint == point:
            log.warning("failpoint hit: killing the process", failpoint=point)
            os.kill(os.getpid(), signal.SIGKILL)


async def _retrying(attempt: Callable[[], Awaitable[None]]) -> None:
    """Runs `attempt`, again after a transient failure (with a short, growing pause), at most
    TRANSIENT_ATTEMPTS times in all."""
    for tries in range(1, TRANSIENT_ATTEMPTS + 1):
        try:
            await attempt()
            return
        except Exception as exc:
            if not is_transient(exc) or tries == TRANSIENT_ATTEMPTS:
                raise
            metrics.TRANSIENT_RETRIES.inc()
            log.warning("transient database failure; trying again", error=_brief(exc))
            await asyncio.sleep(0.05 * 2**tries)


def _write_statement(outbox_table: sa.Table, outcome_table: sa.Table) -> sa.TextClause:
    """Deletes the outbox rows already published (`done`), records the commands' outcomes
    and inserts the outbox rows, from arrays; returns the new rows' ids and whether the outbox
    holds rows older than them that are not `known` (another writer's, or a crashed run's)."""
    ob = f'"{outbox_table.schema}"."{outbox_table.name}"'
    oc = f'"{outcome_table.schema}"."{outcome_table.name}"'
    return sa.text(
        f"""
        WITH gone AS (DELETE FROM {ob} WHERE id = ANY(CAST(:done AS bigint[]))),
        told AS (
            INSERT INTO {oc} (command_id, records)
            SELECT c, r::jsonb FROM unnest(CAST(:cids AS uuid[]), CAST(:recs AS text[])) AS u(c, r)
            ON CONFLICT DO NOTHING
        ),
        ins AS (
            INSERT INTO {ob} (topic, key, value, headers)
            SELECT t, k, v, h::jsonb
            FROM unnest(
                CAST(:topics AS text[]), CAST(:keys AS text[]),
                CAST(:vals AS bytea[]), CAST(:hdrs AS text[])
            ) AS u(t, k, v, h)
            RETURNING id
        )
        SELECT
            array_agg(id ORDER BY id) AS ids,
            EXISTS (
                SELECT id FROM {ob} WHERE id < (SELECT min(id) FROM ins)
                EXCEPT SELECT unnest(CAST(:known AS bigint[]))
            ) AS older
        FROM ins
        """
    )


def _outcome_row(command_id: uuid.UUID, records: list[outbox.OutboxRecord]) -> dict[str, Any]:
    return {
        "command_id": command_id,
        "records": [
            {"topic": r.topic, "key": r.key, "value": r.value.decode(), "headers": r.headers}
            for r in records
            if not Topics.is_dead_letter(r.topic)
        ],
    }


def _record_of(stored: dict[str, Any]) -> outbox.OutboxRecord:
    return outbox.OutboxRecord(
        stored["topic"], stored["key"], stored["value"].encode(), dict(stored["headers"])
    )


def _brief(exc: BaseException) -> str:
    """An exception in a few hundred characters: its type and the start of its message."""
    # A driver error's own message, not SQLAlchemy's wrapping of it with the statement.
    cause = getattr(exc, "orig", None) or exc
    text = f"{type(cause).__name__}: {cause}"
    return text if len(text) <= 500 else text[:500] + "…"


class _Refused(Exception):
    def __init__(self, violation: RuleViolation) -> None:
        self.violation = violation


def _outcome(records: list[outbox.OutboxRecord]) -> list[outbox.OutboxRecord]:
    """Marks each event of one message's outcome with the outcome's size."""
    size = {OUTCOME_SIZE_HEADER: str(len(records))}
    return [replace(r, headers={**r.headers, **size}) for r in records]


def _is_command_topic(record: ConsumerRecord[Any, Any]) -> bool:
    return bool(record.topic.endswith(".commands"))


def _read(model: type[Message], payload: dict[str, Any]) -> Message:
    """A payload as its model. A command strictly: what a caller sends is checked whole (TR08,
    a field the model lacks is refused). An event tolerantly (`contracts.subscribe`): in a
    rolling deploy its producer may be a release ahead of this reader, and a field added since
    is ignored rather than the event dead-lettered; anything else is still checked."""
    if issubclass(model, Command):
        return model.model_validate(payload)
    return tolerant(model, payload)


def _misrouted(topic: str, message: Message) -> str | None:
    """TR04: a command topic carries its service's commands only; an event is accepted only from
    the event topic of the service that owns its type (`allocation.*` from `allocation.events`;
    the platform's own rejections from any event topic)."""
    service, _, kind = topic.partition(".")
    owner = message.TYPE.split(".", 1)[0]
    if kind == "commands" and not isinstance(message, Command):
        return f"TR04: {message.TYPE} is not a command; {topic} carries commands only"
    if kind == "events" and isinstance(message, Command):
        return f"TR04: command {message.TYPE} on event topic {topic}"
    if owner != service and not (kind == "events" and owner == "platform"):
        return f"TR04: {message.TYPE} is accepted only from {owner}.{kind}, not {topic}"
    return None


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
    )
