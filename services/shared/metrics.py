"""Prometheus metrics every service exposes on /metrics, the HTTP middleware that counts
requests, and the background measurement behind the backlog, the lag and /livez."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import Envelope
from services.shared import logs

log = logs.get(__name__)

CONSUMED = Counter("casework_messages_consumed_total", "Records read from Kafka", ["topic"])
APPLIED = Counter("casework_messages_applied_total", "Messages applied", ["type"])
DUPLICATES = Counter("casework_messages_duplicate_total", "Redeliveries skipped by the inbox")
REJECTED = Counter("casework_commands_rejected_total", "Commands rejected", ["rule"])
DEAD_LETTERED = Counter("casework_messages_dead_lettered_total", "Records sent to a DLQ", ["topic"])
PUBLISHED = Counter("casework_outbox_published_total", "Outbox records published")
OUTBOX_LAG = Gauge("casework_outbox_lag", "Outbox records awaiting publication at last relay pass")
TRANSIENT_RETRIES = Counter(
    "casework_transient_retries_total", "Batches tried again after a transient database failure"
)
# TR08: outbox rows the relay could not publish, set aside for an operator.
OUTBOX_PARKED = Counter(
    "casework_outbox_parked_total", "Outbox rows parked by the relay", ["service", "reason"]
)
OUTBOX_PARKED_ROWS = Gauge(
    "casework_outbox_parked_rows", "Parked outbox rows awaiting an operator", ["service"]
)
BATCH_SECONDS = Histogram(
    "casework_batch_seconds",
    "Time to apply one fetched batch in one transaction",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


# What operators scale and alert on. Every instance reports these from the source of truth (the
# outbox table, the group's committed offsets), not from what it happened to do itself.
OUTBOX_BACKLOG = Gauge(
    "casework_outbox_backlog", "Outbox rows not yet published, counted from the table", ["service"]
)
CONSUMER_LAG = Gauge(
    "casework_consumer_lag",
    "End offset minus the consumer group's committed offset, per partition",
    ["group", "topic", "partition"],
)
COMMAND_LATENCY = Histogram(
    "casework_command_latency_seconds",
    "From a command's occurred_at to the commit of its outcome",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
HTTP_REQUESTS = Counter(
    "casework_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["service", "method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "casework_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0),
)
CONSUMER_LAST_BATCH = Gauge(
    "casework_consumer_last_batch_timestamp_seconds",
    "When this instance last committed a consumed batch (Unix time)",
    ["service"],
)
RELAY_LAST_PASS = Gauge(
    "casework_outbox_relay_last_pass_timestamp_seconds",
    "When this instance's outbox relay last finished a pass (Unix time)",
    ["service"],
)

UNMATCHED_ROUTE = "<unmatched>"

# Last relay pass per service (monotonic), for /livez; set by the relay itself.
_relay_passes: dict[str, float] = {}


def relay_passed(service: str) -> None:
    """Called by the outbox relay after each pass, whether or not it held the lock."""
    _relay_passes[service] = time.monotonic()
    RELAY_LAST_PASS.labels(service).set_to_current_time()


def commands_committed(envelopes: Iterable[Envelope | None]) -> None:
    """Called once the outcomes of a batch's commands are committed: wall time since each
    command occurred (the edge stamps occurred_at when it takes the command)."""
    now = time.time()
    for envelope in envelopes:
        if envelope is not None:
            COMMAND_LATENCY.labels(envelope.type).observe(
                max(0.0, now - envelope.occurred_at.timestamp())
            )


class HttpMetrics:
    """ASGI middleware counting every HTTP request by route template (never the raw path: one
    series per route, whatever the ids in it) and status, with its latency."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            method = str(scope.get("method", ""))
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_SECONDS.labels(self.service, method, route).observe(time.perf_counter() - started)


class Liveness:
    """Whether the consumer and the relay still make progress (/livez). A part is stalled when
    it has had work for longer than `stall_seconds` without finishing a pass since: the
    consumer while its own partitions have lag, the relay while the outbox has a backlog. An
    idle part is alive however long ago it last worked."""

    def __init__(
        self, service: str, stall_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.service = service
        self.stall_seconds = stall_seconds
        self._clock = clock
        self._started = clock()
        self._batch_done = self._started
        self._consumer_work_since: float | None = None
        self._outbox_work_since: float | None = None

    def batch_done(self) -> None:
        self._batch_done = self._clock()
        CONSUMER_LAST_BATCH.labels(self.service).set_to_current_time()

    def consumer_work(self, pending: bool) -> None:
        self._consumer_work_since = self._since(self._consumer_work_since, pending)

    def outbox_work(self, pending: bool) -> None:
        self._outbox_work_since = self._since(self._outbox_work_since, pending)

    def _since(self, since: float | None, pending: bool) -> float | None:
        if not pending:
            return None
        return self._clock() if since is None else since

    def stalled(self) -> list[str]:
        """The parts that have stalled (empty: alive)."""
        now = self._clock()
        relay_pass = _relay_passes.get(self.service, self._started)
        parts = {
            "consumer": (self._consumer_work_since, self._batch_done),
            "relay": (self._outbox_work_since, relay_pass),
        }
        return [
            part
            for part, (since, progress) in parts.items()
            if since is not None and now - max(since, progress) > self.stall_seconds
        ]


class OperationsWatch:
    """The runtime's background measurement: the outbox backlog from the table, the group's lag
    per partition from the broker (end offset minus committed offset, read with clients of its
    own so the consumer loop is never held up), and the work that /livez judges progress by."""

    def __init__(
        self,
        *,
        service: str,
        group: str,
        topics: Sequence[str],
        engine: AsyncEngine,
        outbox_table: sa.Table,
        kafka: dict[str, Any],
        assigned: Callable[[], set[TopicPartition]],
        liveness: Liveness,
        interval_seconds: float,
    ) -> None:
        self._service = service
        self._group = group
        self._topics = list(topics)
        self._engine = engine
        self._outbox = outbox_table
        self._kafka = kafka
        self._assigned = assigned
        self._liveness = liveness
        self._interval = interval_seconds
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        try:
            while True:
                await self._measure("outbox backlog", self.outbox_backlog)
                await self._measure("consumer lag", self.consumer_lag)
                await asyncio.sleep(self._interval)
        finally:
            await self._close()

    async def _measure(self, what: str, probe: Callable[[], Awaitable[object]]) -> None:
        try:
            await probe()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("measurement failed; trying again next round", what=what, exc_info=True)

    async def outbox_backlog(self) -> int:
        async with self._engine.connect() as conn:
            count = int(
                await conn.scalar(sa.select(sa.func.count()).select_from(self._outbox)) or 0
            )
        OUTBOX_BACKLOG.labels(self._service).set(count)
        self._liveness.outbox_work(count > 0)
        return count

    async def consumer_lag(self) -> dict[TopicPartition, int]:
        admin, offsets = await self._clients()
        described = await admin.describe_topics(self._topics)
        partitions = sorted(
            TopicPartition(topic["topic"], p["partition"])
            for topic in described
            for p in topic.get("partitions") or ()
        )
        if not partitions:
            return {}
        ends = await offsets.end_offsets(partitions)
        starts = await offsets.beginning_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(self._group, partitions=partitions)
        lags: dict[TopicPartition, int] = {}
        for tp in partitions:
            at = committed.get(tp)
            # No committed offset yet: the group starts at the log's start (earliest).
            position = at.offset if at is not None and at.offset >= 0 else starts[tp]
            lags[tp] = max(0, ends[tp] - position)
            CONSUMER_LAG.labels(self._group, tp.topic, str(tp.partition)).set(lags[tp])
        # Liveness looks only at this instance's partitions: another's stall is not ours.
        self._liveness.consumer_work(any(lags.get(tp, 0) > 0 for tp in self._assigned()))
        return lags

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            admin = AIOKafkaAdminClient(client_id=f"{self._service}-metrics", **self._kafka)
            offsets = AIOKafkaConsumer(
                client_id=f"{self._service}-metrics", enable_auto_commit=False, **self._kafka
            )
            try:
                await admin.start()
                await offsets.start()
            except BaseException:
                await admin.close()
                await offsets.stop()
                raise
            self._admin, self._offsets = admin, offsets
        return self._admin, self._offsets

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            if self._offsets is not None:
                await self._offsets.stop()
        with contextlib.suppress(Exception):
            if self._admin is not None:
                await self._admin.close()
        self._admin = self._offsets = None
