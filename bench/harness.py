"""Shared pieces of the benchmarks: infrastructure (env or embedded), a service process, a
producer of commands asserted as an edge asserts them (a key of the bench's own, whose public key
set the service under test is given) and a consumer that timestamps outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.engine import make_url

from contracts import Actor, Command, CommandRejected, Envelope
from deploy.stack import (
    EmbeddedBroker,
    EmbeddedPostgres,
    create_database,
    create_topics,
    free_port,
    wait_for_port,
)
from services.shared.auth import HEADER, AssertionSigner, SigningKey, key_set

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BenchInfra:
    bootstrap: str
    database_url: str
    keys: SigningKey  # the bench plays the edge


@contextlib.contextmanager
def infrastructure() -> Iterator[BenchInfra]:
    """A broker and a fresh database: from the environment if set, else embedded."""
    broker = pg = None
    bootstrap = os.environ.get("CASEWORK_KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = EmbeddedBroker()
        bootstrap = broker.start()
    server_url = os.environ.get("CASEWORK_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    if not server_url:
        pg = EmbeddedPostgres(Path(tmp.name) / "pgdata", database="postgres")
        server_url = pg.start()
    name = f"casework_bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(server_url).set(database="postgres").render_as_string(False)
    asyncio.run(create_database(admin, name))
    asyncio.run(create_topics(bootstrap))
    try:
        yield BenchInfra(
            bootstrap,
            make_url(server_url).set(database=name).render_as_string(False),
            SigningKey.generate(),
        )
    finally:
        if broker:
            broker.stop()
        if pg:
            pg.stop()
        tmp.cleanup()


@contextlib.contextmanager
def service_process(name: str, infra: BenchInfra, **env: str) -> Iterator[int]:
    """The service as its own process (as in production); yields its HTTP port once ready.
    With CASEWORK_BENCH_PROFILE=DIR, py-spy samples it for the whole run: the collapsed stacks
    go to DIR/<service>.txt and the top entries are printed when it stops."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        cwd=ROOT,
        env={
            **os.environ,
            "CASEWORK_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
            "CASEWORK_DATABASE_URL": infra.database_url,
            "CASEWORK_ASSERTION_KEYS": key_set(infra.keys),
            "CASEWORK_HTTP_PORT": str(port),
            "CASEWORK_LOG_LEVEL": "WARNING",
            **env,
        },
    )
    profiler: subprocess.Popen[bytes] | None = None
    try:
        wait_for_port("127.0.0.1", port, 60)
        if PROFILE_DIR:
            profiler = _profile(process.pid, Path(PROFILE_DIR) / f"{name}.txt")
        yield port
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
        process.terminate()
        process.wait(15)
        if profiler is not None:
            print_profile(Path(PROFILE_DIR) / f"{name}.txt", name)


PROFILE_DIR = os.environ.get("CASEWORK_BENCH_PROFILE", "")


def _profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            *("py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw"),
            *("--output", str(out), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_table(
    path: Path, top: int = 15
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """From py-spy's collapsed stacks: the samples, the frames with most samples of their own
    (where the time is spent) and the project's frames with most samples below them."""
    own: dict[str, int] = {}
    under: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            if "services/" in frame or "contracts/" in frame:
                under[frame] = under.get(frame, 0) + n
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    ours = sorted(under.items(), key=lambda kv: -kv[1])[:top]
    return total, ranked, ours


def print_profile(path: Path, name: str) -> None:
    if not path.exists():
        print(f"profile of {name}: none written", file=sys.stderr)
        return
    total, ranked, ours = profile_table(path)
    print(f"\nprofile of {name}: {total} samples ({path})", file=sys.stderr)
    print("  most samples of their own:", file=sys.stderr)
    for frame, n in ranked:
        print(f"  {100 * n / max(total, 1):5.1f}%  {frame}", file=sys.stderr)
    print("  the project's frames, samples below them:", file=sys.stderr)
    for frame, n in ours:
        print(f"  {100 * n / max(total, 1):5.1f}%  {frame}", file=sys.stderr)


@dataclass(frozen=True)
class Outcome:
    at: float  # time.perf_counter() when observed
    type: str
    payload: dict[str, Any]


class OutcomeWatcher:
    """Reads an event topic from its end and records each command's first outcome (of `types`,
    if given): when it was observed, its type and payload."""

    def __init__(self, bootstrap: str, topic: str, types: set[str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.types = types
        self.seen: dict[uuid.UUID, Outcome] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        # A short fetch wait: the broker answers an empty fetch only when the wait runs out, so
        # the default 500 ms would be measured as latency.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=5,
            fetch_max_bytes=64 << 20,
        )
        await self._consumer.start()
        partitions = [
            TopicPartition(self.topic, p)
            for p in self._consumer.partitions_for_topic(self.topic) or {0, 1, 2, 3}
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=20, max_records=5000)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    # Plain JSON, not the Pydantic envelope: the observer shares the machine
                    # with the service it measures, so it spends as little CPU as it can.
                    envelope = json.loads(record.value)
                    cause = envelope.get("causation_id")
                    if cause and (self.types is None or envelope["type"] in self.types):
                        self.seen.setdefault(
                            uuid.UUID(cause), Outcome(now, envelope["type"], envelope["payload"])
                        )

    async def wait_all(
        self, ids: list[uuid.UUID], timeout: float, *, refuse_rejections: bool = False
    ) -> None:
        pending = set(ids)
        deadline = time.perf_counter() + timeout
        while pending:
            pending = {i for i in pending if i not in self.seen}
            if pending and time.perf_counter() > deadline:
                raise TimeoutError(f"{len(pending)} outcomes not observed")
            await asyncio.sleep(0.002)
        refused = self.rejections(ids)
        if refuse_rejections and refused:
            raise RuntimeError(f"{len(refused)} commands refused, e.g. {refused[0]}")

    def rejections(self, ids: list[uuid.UUID] | None = None) -> list[dict[str, Any]]:
        outcomes = [self.seen[i] for i in ids] if ids is not None else list(self.seen.values())
        return [o.payload for o in outcomes if o.type == CommandRejected.TYPE]

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()


class CommandProducer:
    """Publishes commands as the edge does: each with an assertion bound to it (TR02)."""

    def __init__(
        self, bootstrap: str, keys: SigningKey, actor: Actor, roles: frozenset[str] = frozenset()
    ) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks="all")
        self.actor = actor
        self.roles = roles
        self.signer = AssertionSigner(keys)

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, topic: str, command: Command) -> tuple[Envelope, asyncio.Future[object]]:
        envelope = Envelope.wrap(command, actor=self.actor)
        value = envelope.model_dump_json().encode()
        assertion = self.signer.sign(
            value=value,
            topic=topic,
            message_id=envelope.message_id,
            actor=self.actor,
            roles=self.roles,
        )
        future = await self.producer.send(
            topic, value, key=(command.key() or "").encode(), headers=[(HEADER, assertion.encode())]
        )
        return envelope, future


async def produce_rate(bootstrap: str, count: int, size: int) -> float:
    """Raw aiokafka produce rate (records/s) for records of the commands' size."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks="all")
    await producer.start()
    try:
        payload = b"x" * size
        start = time.perf_counter()
        futures = [
            await producer.send("bench.raw", payload, key=str(i % 64).encode())
            for i in range(count)
        ]
        await asyncio.gather(*futures)
        return count / (time.perf_counter() - start)
    finally:
        await producer.stop()


async def commit_rate(database_url: str, seconds: float = 2.0) -> float:
    """Raw PostgreSQL single-row insert-and-commit rate (transactions/s), one connection."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "create table if not exists bench_raw (id bigserial primary key, v text)"
        )
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            async with conn.transaction():
                await conn.execute("insert into bench_raw (v) values ($1)", "x")
            done += 1
        return done / (time.perf_counter() - start)
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary_ms(latencies: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in latencies]
    return {
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }
