"""Transactional outbox: events are inserted in the transaction that changes the state, and the
relay publishes them after commit, in insertion order, deleting what it published.

A row the broker can never take (over the record size limit, an invalid topic) is parked with
the reason (TR08): moved to `outbox_parked`, counted, logged, and the relay goes on with the
rest. An operator lists parked rows and replays them (`GET /outbox/parked`, `POST
/outbox/parked/{id}/replay`). Any other publish failure (the broker away, a timeout) keeps the
whole batch for the next pass, so order per key holds.

A crash between commit and publication leaves rows behind; the next relay pass (on restart, or
the periodic poll) publishes them. A crash after publishing and before the delete republishes
them: consumers' inboxes drop the second copy by message id. Only one relay per service
publishes at a time (advisory lock), so order per key holds across instances.

From memory (`relay_from_memory`): the consumer hands the relay each committed batch's records
with their row ids (`committed`); the relay publishes them in commit order, holding the same
advisory lock (a session lock on a connection of its own, for the pass), and the rows are
deleted in a later transaction: the consumer's next batch, or the relay's next table pass. The
table pass (lock, select in id order, publish, delete) still runs on start, after another
writer (a timer, a replayed parked row), after any failure of the memory path, after a poll
interval without a wake, and whenever a batch saw older rows in the table it does not know
of (another instance's, or a crashed run's): those go first, so order per key holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiokafka.errors import InvalidTopicError, MessageSizeTooLargeError, RecordTooLargeError
from faststream.kafka import KafkaBroker
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts import Envelope
from contracts.limits import MAX_RECORD_BYTES
from services.shared import db, logs, metrics

log = logs.get(__name__)


@dataclass(frozen=True)
class OutboxRecord:
    topic: str
    key: str | None
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, topic: str, envelope: Envelope, key: str | None) -> OutboxRecord:
        return cls(topic, key, envelope.model_dump_json().encode(), {"type": envelope.type})

    def size(self) -> int:
        """Bytes on the wire, near enough: value, key and headers."""
        return record_size(self.value, self.key, self.headers)


def record_size(value: bytes, key: str | None, headers: dict[str, str]) -> int:
    return (
        len(value)
        + len((key or "").encode())
        + sum(len(k.encode()) + len(v.encode()) for k, v in headers.items())
    )


_BIGINTS = ARRAY(sa.BigInteger)

# Publish failures about the record itself: trying again cannot help (TR08).
_UNPUBLISHABLE = (MessageSizeTooLargeError, RecordTooLargeError, InvalidTopicError)


async def write(conn: AsyncConnection, table: sa.Table, records: list[OutboxRecord]) -> None:
    await db.insert_many(
        conn,
        table.insert(),
        [{"topic": r.topic, "key": r.key, "value": r.value, "headers": r.headers} for r in records],
    )


def record_arrays(records: Sequence[OutboxRecord]) -> dict[str, list[Any]]:
    """The records as the four arrays of an `unnest` insert (headers as JSON text)."""
    return {
        "topics": [r.topic for r in records],
        "keys": [r.key for r in records],
        "vals": [r.value for r in records],
        "hdrs": [json.dumps(r.headers) for r in records],
    }


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: sa.Table,
        broker: KafkaBroker,
        *,
        parked: sa.Table,
        batch_size: int = 2000,
        poll_seconds: float = 0.5,
        max_record_bytes: int = MAX_RECORD_BYTES,
        from_memory: bool = False,
    ) -> None:
        self._engine = engine
        self._table = table
        self.from_memory = from_memory
        # From memory: committed records not yet published, in commit order, with their row
        # ids; ids published from memory whose rows are not yet deleted.
        self._memory: list[tuple[int, OutboxRecord]] = []
        self._done: list[int] = []
        self._sending: list[tuple[int, OutboxRecord]] = []  # being published from memory
        self._table_needed = True  # on start: whatever a previous run left
        self._lock_conn: AsyncConnection | None = None
        self._parked = parked
        self._max_record_bytes = max_record_bytes
        self._service = str(table.schema)
        self._broker = broker
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock_key = sa.func.hashtext(f"outbox:{table.schema}")

    def wake(self) -> None:
        """Another writer committed rows (or they may be there from before): a table pass."""
        self._table_needed = True
        self._wake.set()

    def known_ids(self) -> list[int]:
        """Row ids this relay knows of: committed and waiting in memory, or published and not
        yet deleted."""
        return [row_id for row_id, _ in (*self._memory, *self._sending)] + self._done

    def published_ids(self) -> list[int]:
        """Rows published from memory, to be deleted by the caller's next transaction."""
        return list(self._done)

    def deleted(self, ids: Sequence[int]) -> None:
        """The caller's transaction that deleted these rows committed."""
        gone = set(ids)
        self._done = [i for i in self._done if i not in gone]

    def committed(
        self, records: Sequence[OutboxRecord], ids: Sequence[int], *, older_unknown: bool
    ) -> None:
        """A consumer's transaction committed these records as these rows (ids ascending in
        the records' order). `older_unknown`: the transaction saw older rows in the table that
        this relay does not know of; a table pass publishes them (and these) first."""
        if older_unknown:
            self._table_needed = True
        self._memory.extend(zip(sorted(ids), records, strict=True))
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_lock_conn()
        if self._done:  # best effort: left behind, they are only published again
            with contextlib.suppress(Exception):
                await self._delete_done()

    async def _close_lock_conn(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            except TimeoutError:
                # Idle for a poll interval: rows of another instance (or of a crashed run)
                # are looked for in the table. While batches commit, each batch's statement
                # tells whether older rows this relay does not know of are there.
                self._table_needed = True
            self._wake.clear()
            try:
                await self.run_pass()
                metrics.relay_passed(str(self._table.schema))  # /livez: the relay moves
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                self._table_needed = True
                await self._close_lock_conn()
                await asyncio.sleep(self._poll_seconds)

    async def run_pass(self) -> None:
        """One pass: the table first if it may hold rows not in memory, then memory."""
        if not self.from_memory:
            await self.publish_pending()
            return
        if self._table_needed:
            await self.publish_pending()
        if self._memory:
            await self._publish_memory()

    async def _publish_memory(self) -> None:
        """Publishes what the consumer committed, from memory, under the relay's lock. Any
        failure (the lock held elsewhere, the broker) leaves the rows to a table pass."""
        if self._lock_conn is None:
            conn = await self._engine.connect()
            self._lock_conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        locked = await self._lock_conn.scalar(
            sa.select(sa.func.pg_try_advisory_lock(self._lock_key))
        )
        if not locked:
            self._memory.clear()  # another instance's relay is publishing: the table covers it
            self._table_needed = True
            return
        batch, self._memory = self._memory, []
        self._sending = batch
        try:
            futures = [
                await self._broker.publish(
                    record.value,
                    record.topic,
                    key=record.key.encode() if record.key is not None else None,
                    headers=record.headers,
                    no_confirm=True,
                )
                for _, record in batch
            ]
            await asyncio.gather(*futures)
            self._done.extend(row_id for row_id, _ in batch)  # rows still there, still known
        except Exception:
            log.warning("publishing from memory failed; the relay publishes from the table")
            self._memory.clear()
            self._table_needed = True
            raise
        finally:
            self._sending = []
            await self._lock_conn.scalar(sa.select(sa.func.pg_advisory_unlock(self._lock_key)))
        metrics.PUBLISHED.inc(len(batch))
        metrics.OUTBOX_LAG.set(len(self._memory))

    async def _delete_done(self) -> None:
        """Deletes the rows published from memory (in a transaction of its own, so they stay
        known until it commits)."""
        done = list(self._done)
        if done:
            t = self._table
            async with self._engine.begin() as conn:
                await conn.execute(t.delete().where(t.c.id == sa.func.any(sa.cast(done, _BIGINTS))))
            self.deleted(done)

    async def publish_pending(self) -> int:
        """Publish everything pending; returns how many records were published."""
        published = 0
        await self._delete_done()  # published from memory: not again
        while True:
            async with self._engine.begin() as conn:
                locked = await conn.scalar(
                    sa.select(sa.func.pg_try_advisory_xact_lock(self._lock_key))
                )
                if not locked:
                    return published  # another instance's relay is publishing
                t = self._table
                rows = (
                    await conn.execute(
                        sa.select(t.c.id, t.c.topic, t.c.key, t.c.value, t.c.headers)
                        .order_by(t.c.id)
                        .limit(self._batch_size)
                    )
                ).all()
                if not rows:
                    metrics.OUTBOX_LAG.set(0)
                    self._table_needed = False
                    return published
                parked = await self._send(rows)
                if parked:
                    await self._park(conn, rows, parked)
                # By id, not by range: a concurrent transaction may still commit a lower id.
                ids = [row.id for row in rows]
                await conn.execute(t.delete().where(t.c.id == sa.func.any(sa.cast(ids, _BIGINTS))))
            published += len(rows)
            metrics.PUBLISHED.inc(len(rows))
            # Published from the table: not again from memory.
            sent = set(ids)
            self._memory = [(i, r) for i, r in self._memory if i not in sent]
            if len(rows) < self._batch_size:
                metrics.OUTBOX_LAG.set(0)
                self._table_needed = False
                return published
            metrics.OUTBOX_LAG.set(len(rows))

    async def _send(self, rows: Sequence[Any]) -> dict[int, str]:
        """Publishes the rows; returns the ones to park (by id, with the reason). Raises when
        any other row failed: the batch stays for the next pass."""
        parked: dict[int, str] = {}
        futures: list[tuple[int, Any]] = []
        for row in rows:
            size = record_size(bytes(row.value), row.key, dict(row.headers))
            if size > self._max_record_bytes:
                parked[row.id] = f"TR08: {size} bytes, over the limit of {self._max_record_bytes}"
                continue
            try:
                future = await self._broker.publish(
                    bytes(row.value),
                    row.topic,
                    key=row.key.encode() if row.key is not None else None,
                    headers=dict(row.headers),
                    no_confirm=True,
                )
            except _UNPUBLISHABLE as exc:
                parked[row.id] = f"refused by the broker: {exc!r}"[:2_000]
                continue
            futures.append((row.id, future))
        results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        failures = [
            (row_id, result)
            for (row_id, _), result in zip(futures, results, strict=True)
            if isinstance(result, BaseException)
        ]
        for row_id, failure in failures:
            if not isinstance(failure, _UNPUBLISHABLE):
                raise failure
            parked[row_id] = f"refused by the broker: {failure!r}"[:2_000]
        return parked

    async def _park(
        self, conn: AsyncConnection, rows: Sequence[Any], parked: dict[int, str]
    ) -> None:
        """TR08: sets aside rows that can never be published, so the rest go on."""
        await db.insert_many(
            conn,
            self._parked.insert(),
            [
                {
                    "id": row.id,
                    "topic": row.topic,
                    "key": row.key,
                    "value": row.value,
                    "headers": row.headers,
                    "reason": parked[row.id],
                }
                for row in rows
                if row.id in parked
            ],
        )
        for row in rows:
            if row.id in parked:
                log.error(
                    "outbox row parked: it cannot be published",
                    row=row.id,
                    topic=row.topic,
                    reason=parked[row.id],
                )
                metrics.OUTBOX_PARKED.labels(self._service, parked[row.id].split(":")[0]).inc()
        waiting = await conn.scalar(sa.select(sa.func.count()).select_from(self._parked))
        metrics.OUTBOX_PARKED_ROWS.labels(self._service).set(waiting or 0)


async def list_parked(conn: AsyncConnection, parked: sa.Table) -> list[dict[str, Any]]:
    rows = await conn.execute(
        sa.select(
            parked.c.id,
            parked.c.topic,
            parked.c.key,
            parked.c.headers,
            parked.c.reason,
            parked.c.parked_at,
            sa.func.length(parked.c.value).label("bytes"),
        ).order_by(parked.c.id)
    )
    return [dict(row._mapping) for row in rows]


async def replay_parked(
    conn: AsyncConnection, parked: sa.Table, outbox: sa.Table, row_id: int
) -> bool:
    """Puts a parked row back in the outbox (as the newest row); False if there is none."""
    row = (
        await conn.execute(sa.delete(parked).where(parked.c.id == row_id).returning(parked))
    ).first()
    if row is None:
        return False
    await conn.execute(
        outbox.insert().values(topic=row.topic, key=row.key, value=row.value, headers=row.headers)
    )
    return True
