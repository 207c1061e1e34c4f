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
publishes at a time (advisory lock), so order per key holds across instances."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiokafka.errors import InvalidTopicError, MessageSizeTooLargeError, RecordTooLargeError
from faststream.kafka import KafkaBroker
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


# Publish failures about the record itself: trying again cannot help (TR08).
_UNPUBLISHABLE = (MessageSizeTooLargeError, RecordTooLargeError, InvalidTopicError)


async def write(conn: AsyncConnection, table: sa.Table, records: list[OutboxRecord]) -> None:
    await db.insert_many(
        conn,
        table.insert(),
        [{"topic": r.topic, "key": r.key, "value": r.value, "headers": r.headers} for r in records],
    )


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
    ) -> None:
        self._engine = engine
        self._table = table
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
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()
            try:
                await self.publish_pending()
                metrics.relay_passed(str(self._table.schema))  # /livez: the relay moves
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                await asyncio.sleep(self._poll_seconds)

    async def publish_pending(self) -> int:
        """Publish everything pending; returns how many records were published."""
        published = 0
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
                    return published
                parked = await self._send(rows)
                if parked:
                    await self._park(conn, rows, parked)
                # By id, not by range: a concurrent transaction may still commit a lower id.
                await conn.execute(t.delete().where(t.c.id.in_([row.id for row in rows])))
            published += len(rows)
            metrics.PUBLISHED.inc(len(rows))
            if len(rows) < self._batch_size:
                metrics.OUTBOX_LAG.set(0)
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
