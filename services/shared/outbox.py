"""Transactional outbox: events are inserted in the transaction that changes the state, and the
relay publishes them after commit, in insertion order, deleting what it published.

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
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts import Envelope
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
        batch_size: int = 2000,
        poll_seconds: float = 0.5,
    ) -> None:
        self._engine = engine
        self._table = table
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
                await self._send(rows)
                # By id, not by range: a concurrent transaction may still commit a lower id.
                await conn.execute(t.delete().where(t.c.id.in_([row.id for row in rows])))
            published += len(rows)
            metrics.PUBLISHED.inc(len(rows))
            if len(rows) < self._batch_size:
                metrics.OUTBOX_LAG.set(0)
                return published
            metrics.OUTBOX_LAG.set(len(rows))

    async def _send(self, rows: Sequence[Any]) -> None:
        futures = [
            await self._broker.publish(
                bytes(row.value),
                row.topic,
                key=row.key.encode() if row.key is not None else None,
                headers=dict(row.headers),
                no_confirm=True,
            )
            for row in rows
        ]
        await asyncio.gather(*futures)
