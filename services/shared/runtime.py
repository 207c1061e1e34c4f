"""Runs one service: migrations, the Kafka consumer, the outbox relay and the HTTP endpoints
(/healthz, /readyz, /livez, /metrics and the service's read API) in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import uvicorn
from aiokafka import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from contracts import Topics
from services.shared import (
    auth,
    db,
    guard,
    identity,
    kafka_auth,
    logs,
    metrics,
    outbox,
    plumbing_tables,
)
from services.shared.consumer import BatchProcessor, Clock, utc_now
from services.shared.outbox import OutboxRelay
from services.shared.settings import Settings
from services.shared.topic_watch import RewindAfterLoss, TopicWatch, commit_processed
from services.shared.transaction import Dispatcher, StagedConnection, Transaction

log = logs.get(__name__)


@dataclass
class ServiceSpec:
    """What makes a service: its tables, handlers, the topics it reads and its read API."""

    name: str
    metadata: sa.MetaData
    dispatcher: Dispatcher
    consumes: Sequence[str]
    event_topic: str
    routes: Sequence[BaseRoute] = field(default_factory=list)
    # Background loops (schedulers, delivery workers): started with the service, cancelled on
    # stop. Each gets the runtime; state changes go through `runtime.transaction()`.
    tasks: Sequence[Callable[[ServiceRuntime], Coroutine[Any, Any, None]]] = field(
        default_factory=list
    )

    @property
    def outbox(self) -> sa.Table:
        return self.metadata.tables[f"{self.name}.outbox"]

    @property
    def inbox(self) -> sa.Table:
        return self.metadata.tables[f"{self.name}.inbox"]

    @property
    def parked(self) -> sa.Table:
        return _plumbing(self.metadata, f"{self.name}.outbox_parked", plumbing_tables.parked_table)

    @property
    def outcomes(self) -> sa.Table:
        return _plumbing(self.metadata, f"{self.name}.outcomes", plumbing_tables.outcome_table)


def _plumbing(
    metadata: sa.MetaData, name: str, define: Callable[[sa.MetaData], sa.Table]
) -> sa.Table:
    """A plumbing table of the service's schema (defined once, on first use)."""
    table = metadata.tables.get(name)
    return table if table is not None else define(metadata)


async def _raw_records(message: Any) -> Any:
    # The processor parses each record itself (bad records go to the DLQ, not to an exception).
    return message.raw_message


class ServiceRuntime:
    def __init__(self, spec: ServiceSpec, settings: Settings, clock: Clock = utc_now) -> None:
        self.spec = spec
        self.settings = settings
        self.clock = clock
        self.engine: AsyncEngine = db.create_engine(settings)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=settings.service_name,
            acks="all",
            linger_ms=2,
            enable_idempotence=False,  # tansu has no InitProducerId; the inbox dedupes instead
            security=kafka_auth.faststream_security(settings),
            log_level=logging.DEBUG,  # per-message "Received/Processed" lines only at DEBUG
        )
        self.relay = OutboxRelay(
            self.engine,
            spec.outbox,
            self.broker,
            parked=spec.parked,
            batch_size=settings.relay_batch_size,
            poll_seconds=settings.relay_poll_seconds,
            max_record_bytes=settings.max_record_bytes,
            from_memory=settings.relay_from_memory,
        )
        self.processor = BatchProcessor(
            engine=self.engine,
            outbox_table=spec.outbox,
            inbox_table=spec.inbox,
            outcome_table=spec.outcomes,
            max_record_bytes=settings.max_record_bytes,
            dispatcher=spec.dispatcher,
            verifier=auth.AssertionVerifier(
                settings.assertion_keys,
                max_lifetime_seconds=settings.assertion_max_lifetime_seconds,
                leeway_seconds=settings.clock_leeway_seconds,
            ),
            event_topic=spec.event_topic,
            clock=clock,
            # From memory, the processor hands the relay what it committed; otherwise a wake
            # sends the relay to the table.
            on_commit=(lambda: None) if settings.relay_from_memory else self.relay.wake,
            publisher=self.relay if settings.relay_from_memory else None,
            failpoint=settings.failpoint,
        )
        self.liveness = metrics.Liveness(spec.name, settings.liveness_stall_seconds)
        self._register_consumer()
        self.topic_watch = TopicWatch(
            settings,
            self.needed_topics(),
            restart_consumer=self._restart_consumer,
            consuming=lambda: bool(self.assigned_partitions()),
            stalled=lambda: "consumer" in self.liveness.stalled(),
            broker_lost=self._rewind.broker_lost,
        )

    def needed_topics(self) -> list[str]:
        """What the service reads, writes its events to and dead-letters into."""
        consumed = list(self.spec.consumes)
        return [*consumed, self.spec.event_topic, *(Topics.dead_letter(t) for t in consumed)]

    async def _restart_consumer(self) -> None:
        try:
            await self._subscriber.stop()
        except asyncio.CancelledError:
            # aiokafka's fetcher re-raises the cancellation of its own tasks when it closes;
            # only a cancellation of this task is ours to pass on.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        await self._subscriber.start()

    def _register_consumer(self) -> None:
        backoff = _Backoff(self.settings.retry_backoff_max_seconds)
        self._rewind = RewindAfterLoss(lambda: self._subscriber.consumer)

        self._subscriber = self.broker.subscriber(
            *self.spec.consumes,
            group_id=self.settings.group_id,
            batch=True,
            max_records=self.settings.batch_max_records,
            # getmany returns as soon as records are fetched; a long timeout only spares the
            # idle loop FastStream's extra sleep after an empty poll.
            batch_timeout_ms=500,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=max(500, self.settings.session_timeout_ms // 4),
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            decoder=_raw_records,
            listener=self._rewind,
            include_in_schema=False,
        )

        @self._subscriber
        async def consume(body: Any, message: KafkaMessage) -> None:
            try:
                await self.processor.process(message.raw_message)  # type: ignore[arg-type]
            except Exception:
                log.exception("batch not applied; will re-read after backoff")
                self.topic_watch.nudge()  # a lost topic shows up here first
                await asyncio.sleep(backoff.next())
                await message.nack()
                return
            backoff.reset()
            # Offsets only after the transaction committed, and only past what it applied.
            await commit_processed(message.consumer, message.raw_message)  # type: ignore[arg-type]
            self.liveness.batch_done()

    async def start(self) -> None:
        await db.migrate(self.settings)
        await self.broker.start()
        self.relay.start()
        self.relay.wake()  # publish whatever a previous crash left in the outbox
        self._tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(task(self))
            for task in (*self.spec.tasks, _prune_inbox_forever, _watch_operations)
        ]
        self._tasks.append(asyncio.create_task(self.topic_watch.run_forever()))
        log.info("service started", service=self.spec.name)

    async def stop(self) -> None:
        for task in getattr(self, "_tasks", []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.relay.stop()
        await self.broker.stop()
        await self.engine.dispose()

    async def prune_inbox(self, now: datetime) -> int:
        """Forgets applied message ids older than the retention; returns how many."""
        cutoff = now - timedelta(days=self.settings.inbox_retention_days)
        inbox = self.spec.inbox
        async with self.engine.begin() as conn:
            result = await conn.execute(inbox.delete().where(inbox.c.applied_at < cutoff))
        return int(result.rowcount or 0)

    @contextlib.asynccontextmanager
    async def transaction(self, now: datetime | None = None) -> AsyncIterator[Transaction]:
        """A transaction not caused by a consumed message (a timer, a delivery worker)."""
        async with self.engine.begin() as conn:
            staged = StagedConnection(conn)
            work = Transaction(
                conn=staged, now=now or self.clock(), event_topic=self.spec.event_topic
            )
            yield work
            await staged.flush()
            await outbox.write(conn, self.spec.outbox, work.emitted)
        if work.emitted:  # a timer's tick that emitted nothing leaves the relay alone
            self.relay.wake()

    def assigned_partitions(self) -> set[TopicPartition]:
        """The partitions the group has given this instance's consumer (empty before it joins)."""
        consumer = getattr(self._subscriber, "consumer", None)
        return set(consumer.assignment()) if consumer is not None else set()

    async def _parked_rows(self, request: Request) -> Response:
        """TR08: the outbox rows the relay parked, for an operator."""
        await guard.with_role(request, identity.AppRole.OPERATOR)
        async with self.engine.connect() as conn:
            rows = await outbox.list_parked(conn, self.spec.parked)
        return JSONResponse([{**row, "parked_at": row["parked_at"].isoformat()} for row in rows])

    async def _replay_parked(self, request: Request) -> Response:
        await guard.with_role(request, identity.AppRole.OPERATOR)
        row_id = int(request.path_params["row_id"])
        async with self.engine.begin() as conn:
            replayed = await outbox.replay_parked(conn, self.spec.parked, self.spec.outbox, row_id)
        if not replayed:
            raise guard.HttpRefusal(404, f"no parked outbox row {row_id}", "TR08")
        self.relay.wake()
        return JSONResponse({"replayed": row_id}, status_code=202)

    async def ready(self) -> dict[str, bool]:
        database = False
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                async with self.engine.connect() as conn:
                    database = (await conn.scalar(sa.text("select 1"))) == 1
        broker = False
        with contextlib.suppress(Exception):
            broker = bool(await self.broker.ping(timeout=2))
        return {"database": database, "broker": broker}

    def asgi(self) -> Starlette:
        async def healthz(_: Request) -> Response:
            return JSONResponse({"status": "up", "service": self.spec.name})

        async def readyz(_: Request) -> Response:
            checks = await self.ready()
            body: dict[str, object] = {}
            if reason := await self.topic_watch.not_ready_reason():
                checks["topics"] = False  # only shown while topics are missing or coming back
                body["reason"] = reason
            return JSONResponse(
                {"ready": all(checks.values()), **checks, **body},
                status_code=200 if all(checks.values()) else 503,
            )

        async def livez(_: Request) -> Response:
            # Fails only on a stall (work waiting, no progress): a restart would help; an
            # unreachable database or broker is /readyz's business.
            stalled = self.liveness.stalled()
            return JSONResponse(
                {"live": not stalled, "stalled": stalled, "service": self.spec.name},
                status_code=503 if stalled else 200,
            )

        async def metrics_endpoint(_: Request) -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app = Starlette(
            routes=[
                Route("/healthz", healthz),
                Route("/readyz", readyz),
                Route("/livez", livez),
                Route("/metrics", metrics_endpoint),
                Route("/outbox/parked", self._parked_rows),
                Route("/outbox/parked/{row_id:int}/replay", self._replay_parked, methods=["POST"]),
                *self.spec.routes,
            ],
            middleware=[Middleware(metrics.HttpMetrics, service=self.spec.name)],
            lifespan=lifespan,
            exception_handlers={guard.HttpRefusal: guard.http_refusal},
        )
        app.state.engine = self.engine
        app.state.runtime = self
        app.state.signin = signin_verifier(self.settings)
        return app


def signin_verifier(settings: Settings) -> identity.SignInVerifier | None:
    """The verifier of sign-in tokens for a service's HTTP entrance (TR01, TR05)."""
    if not settings.oidc_issuer:
        return None
    return identity.SignInVerifier(
        settings.oidc_issuer,
        settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        leeway_seconds=settings.clock_leeway_seconds,
        roles_claim=settings.oidc_roles_claim,
    )


async def _prune_inbox_forever(runtime: ServiceRuntime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.inbox_prune_interval_seconds)
        try:
            pruned = await runtime.prune_inbox(runtime.clock())
            log.info("inbox pruned", forgotten=pruned)
        except Exception:
            log.exception("inbox pruning failed; trying again later")


async def _watch_operations(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    await metrics.OperationsWatch(
        service=runtime.spec.name,
        group=settings.group_id,
        topics=runtime.spec.consumes,
        engine=runtime.engine,
        outbox_table=runtime.spec.outbox,
        kafka={
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            **kafka_auth.kafka_client_kwargs(settings),
        },
        assigned=runtime.assigned_partitions,
        liveness=runtime.liveness,
        interval_seconds=settings.metrics_interval_seconds,
    ).run()


class _Backoff:
    def __init__(self, maximum: float) -> None:
        self._maximum = maximum
        self._current = 0.05

    def next(self) -> float:
        delay = self._current
        self._current = min(self._current * 2, self._maximum)
        return delay

    def reset(self) -> None:
        self._current = 0.05


def serve(spec: ServiceSpec, settings: Settings | None = None) -> None:
    """Entry point of `python -m services.<name>`."""
    settings = settings or Settings(service_name=spec.name)
    logs.configure(settings.log_level, settings.log_json, settings.log_repeat_window_seconds)
    runtime = ServiceRuntime(spec, settings)
    uvicorn.run(
        runtime.asgi(),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        loop=settings.event_loop,
    )
