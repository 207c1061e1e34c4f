"""Restarts without manual action: the embedded broker killed and started again on the same
port (with memory storage it comes back empty; with s3 storage it keeps everything), and a
service process killed under the stack's supervision.

Each test has a broker of its own and a database of its own, so that killing it cannot disturb
the rest of the suite."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from contracts import Actor, Envelope, Topics
from contracts.allocation import ReceiveReferral, WorkItemCreated
from deploy.identity import SignedInUsers
from deploy.stack import (
    DevIdentityProvider,
    EmbeddedBroker,
    Stack,
    create_database,
    create_topics,
)
from services.allocation.service import SPEC
from services.shared.auth import SigningKey, key_set
from services.shared.settings import Settings
from tests.cli.conftest import ROOT, cli_env
from tests.conftest import RunningService, start_service
from tests.support.client import CommandClient, EventLog, clients_on
from tests.support.infra import Infra

pytestmark = pytest.mark.faults
OFFICER = Actor(user_id="so-hub", position_id="pos-so-hub")


def _referral() -> ReceiveReferral:
    return ReceiveReferral(person_id=f"P-{uuid.uuid4().hex[:10]}", person_name="Restart Test")


@pytest.fixture
def database(infra: Infra) -> Iterator[str]:
    """A fresh database on the session's server."""
    name = f"casework_restarts_{uuid.uuid4().hex[:10]}"
    url = make_url(infra.database_url)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(create_database(admin, name))
    yield url.set(database=name).render_as_string(hide_password=False)
    with contextlib.suppress(Exception):
        asyncio.run(_drop_database(admin, name))


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def running(
    broker: EmbeddedBroker,
    database_url: str,
    settings_for: Callable[..., Settings],
    edge_key: SigningKey,
    users: SignedInUsers,
) -> AsyncIterator[tuple[RunningService, CommandClient, EventLog]]:
    """Allocation in-process on `broker`, with an edge and an event log of their own."""
    bootstrap = broker.bootstrap_servers
    await create_topics(bootstrap)
    service = await start_service(
        SPEC,
        settings_for(
            "allocation",
            kafka_bootstrap_servers=bootstrap,
            database_url=database_url,
            # Only /readyz and consumer errors prompt a check here: the test sees the gap.
            topic_check_seconds=3600,
        ),
        users,
    )
    edge = settings_for(
        "edge", kafka_bootstrap_servers=bootstrap, assertion_signing_key=edge_key.dumps()
    )
    try:
        async with clients_on(bootstrap, edge, users) as (commands, events):
            yield service, commands, events
    finally:
        await service.http.aclose()
        await service.runtime.stop()


async def _count(database_url: str, persons: list[str]) -> tuple[int, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "select count(*), count(distinct person_id) from allocation.work_items"
                        " where person_id = any(:p)"
                    ),
                    {"p": persons},
                )
            ).one()
            return int(row[0]), int(row[1])
    finally:
        await engine.dispose()


async def _readyz_until(
    service: RunningService, accept: Callable[[httpx.Response], bool], timeout: float = 60.0
) -> list[httpx.Response]:
    """Every /readyz answer until one is accepted (or the timeout)."""
    seen: list[httpx.Response] = []
    async with asyncio.timeout(timeout):
        while True:
            response = await service.http.get("/readyz")
            seen.append(response)
            if accept(response):
                return seen
            await asyncio.sleep(0.05)


async def _send_until_accepted(commands: CommandClient, referral: ReceiveReferral) -> Envelope:
    """The edge may refuse while the command topic is coming back: the caller tries again."""
    async with asyncio.timeout(60):
        while True:
            try:
                return await commands.send(referral, OFFICER)
            except AssertionError:
                await asyncio.sleep(0.2)


async def test_broker_restarted_empty_services_recreate_topics_and_apply_every_command_once(
    database: str,
    settings_for: Callable[..., Settings],
    edge_key: SigningKey,
    users: SignedInUsers,
) -> None:
    """Memory storage: the broker comes back with no topics. The service notices, recreates
    them, says not ready (with the reason) until its consumer holds partitions again, and then
    applies every command exactly once; no manual step."""
    broker = EmbeddedBroker(storage="memory")
    broker.start()
    try:
        async with running(broker, database, settings_for, edge_key, users) as (
            service,
            commands,
            events,
        ):
            await _readyz_until(
                service, lambda r: r.status_code == 200 and service.runtime.topic_watch.marker_made
            )
            before = [_referral() for _ in range(30)]
            sent = [await commands.send(r, OFFICER) for r in before]
            await events.wait_for(lambda: all(events.caused_by(s.message_id) for s in sent), 60)

            broker.kill()
            broker.start()  # same port, no topics, no offsets
            answers = await _readyz_until(service, lambda r: r.status_code == 200)
            refusals = [r.json() for r in answers if r.status_code == 503]
            assert refusals, "ready straight after the broker lost its topics"
            assert all(r["topics"] is False and r["reason"] for r in refusals), refusals
            watch = service.runtime.topic_watch
            assert watch.recoveries == 1
            assert set(service.runtime.needed_topics()) <= await watch.existing()

            # Published events went with the broker: a new log reads the new topics.
            after_log = EventLog(broker.bootstrap_servers)
            await after_log.start()
            try:
                after = [_referral() for _ in range(30)]
                sent_after = [await _send_until_accepted(commands, r) for r in after]
                await after_log.wait_for(
                    lambda: all(after_log.caused_by(s.message_id) for s in sent_after), 90
                )
                for envelope in sent_after:
                    outcome = {
                        e.message_id
                        for e in after_log.caused_by(envelope.message_id)
                        if e.type == WorkItemCreated.TYPE  # v2 is published beside it
                    }
                    assert len(outcome) == 1, envelope.message_id
            finally:
                await after_log.stop()
        for envelope in sent:
            created = events.caused_by(envelope.message_id)
            assert len({e.message_id for e in created if e.type == WorkItemCreated.TYPE}) == 1
        persons = [r.person_id for r in before + after]
        assert await _count(database, persons) == (60, 60)
    finally:
        broker.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offsets on `topic`, summed over its partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        total = 0
        for partition in consumer.partitions_for_topic(topic) or set():
            total += await consumer.committed(TopicPartition(topic, partition)) or 0
        return total
    finally:
        await consumer.stop()


async def test_broker_with_s3_storage_killed_keeps_topics_records_and_offsets(
    tmp_path: Path,
) -> None:
    """s3 storage (tansu over a local S3 server): the broker is SIGKILLed and started again on
    the same port; the topics, every acknowledged record and the group's committed offsets are
    still there. (The services are not run over it: see the README on what the embedded broker
    keeps.)"""
    pytest.importorskip("moto", reason="s3 storage needs the moto[server] package")
    broker = EmbeddedBroker(storage="s3")
    broker.start(str(tmp_path / "broker.log"))
    topic, group = Topics.ALLOCATION_COMMANDS, "restart-probe"
    try:
        await create_topics(broker.bootstrap_servers)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            sent = [f"record-{i}".encode() for i in range(40)]
            for value in sent:
                await producer.send_and_wait(topic, value, key=value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap_servers,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            read: list[bytes] = []
            async with asyncio.timeout(60):
                while len(read) < 10:
                    batch = await consumer.getmany(timeout_ms=500, max_records=10 - len(read))
                    read += [r.value or b"" for records in batch.values() for r in records]
            await consumer.commit()
        finally:
            await consumer.stop()
        committed = await _committed(broker.bootstrap_servers, group, topic)
        assert committed == 10

        broker.kill()
        broker.start()
        assert set(Topics.all()) <= await _topics(broker.bootstrap_servers)
        assert await _committed(broker.bootstrap_servers, group, topic) == committed
        assert sorted(await _read_all(broker.bootstrap_servers, topic, len(sent))) == sorted(sent)
    finally:
        broker.stop()


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    """Every record of `topic` from the start, once `expected` have been read."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        read: list[bytes] = []
        async with asyncio.timeout(60):
            while len(read) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                read += [r.value or b"" for records in batch.values() for r in records]
        return read
    finally:
        await consumer.stop()


async def test_supervised_service_killed_is_started_again_and_applies_commands(
    database: str,
    identity: DevIdentityProvider,
    settings_for: Callable[..., Settings],
    edge_key: SigningKey,
    users: SignedInUsers,
    tmp_path: Path,
) -> None:
    """`casework up` supervision: allocation as a process of the stack, SIGKILLed; the
    supervisor starts it again on the same port, it applies a command sent afterwards, and
    stopping the stack ends it for good."""
    broker = EmbeddedBroker(storage="memory")
    broker.start()
    await create_topics(broker.bootstrap_servers)
    stack = Stack(state_dir=tmp_path / "state", use_environment=False)
    stack.env = {
        "CASEWORK_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "CASEWORK_DATABASE_URL": database,
        "CASEWORK_OIDC_ISSUER": identity.issuer,
        "CASEWORK_ASSERTION_KEYS": key_set(edge_key),
    }
    try:
        service = stack.start_service("allocation", log_path=tmp_path / "allocation.log")
        stack.supervise(backoff_first=0.2)
        await asyncio.to_thread(stack.wait_ready, 90)
        first = service.process
        first.send_signal(signal.SIGKILL)
        async with asyncio.timeout(90):
            while True:  # wait for the outcome: started again and ready
                if service.restarts == 1 and await _ready(service.url):
                    break
                await asyncio.sleep(0.1)
        assert service.process.pid != first.pid
        assert first.wait(5) == -signal.SIGKILL

        edge = settings_for(
            "edge",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            assertion_signing_key=edge_key.dumps(),
        )
        async with clients_on(broker.bootstrap_servers, edge, users) as (commands, events):
            referral = _referral()
            sent = await commands.send(referral, OFFICER)
            (outcome, _v2) = await events.outcome(sent.message_id, timeout=60)
            assert outcome.type == WorkItemCreated.TYPE
        assert await _count(database, [referral.person_id]) == (1, 1)
    finally:
        stack.stop()
        broker.stop()
    assert service.process.poll() is not None
    assert service.restarts == 1  # stopping is not dying: no restart after stop


async def _ready(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{url}/readyz")).status_code == 200
    return False


def _children(parent: int, module: str) -> list[int]:
    """The processes `parent` started with `python -m <module>` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if ppid == parent and module.encode() in argv:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is not alive
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    return False


async def test_casework_up_starts_a_killed_service_again_and_down_stops_everything(
    database: str, tmp_path: Path
) -> None:
    """`casework up` as an operator runs it: allocation's process is SIGKILLed, up starts it
    again on the address recorded for it, and `casework down` ends every process."""
    state = tmp_path / "state"
    env = cli_env(CASEWORK_DATABASE_URL=database)
    up = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "deploy", "--state-dir", str(state), "up"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(180):
            while True:  # wait for the outcome: the stack recorded and allocation ready
                if (state / "stack.json").exists():
                    urls = json.loads((state / "stack.json").read_text())["services"]
                    if await _ready(urls["allocation"]) and _children(up.pid, "services.edge"):
                        break
                assert up.returncode is None, "casework up exited"
                await asyncio.sleep(0.2)
        (first,) = _children(up.pid, "services.allocation")
        everything = [
            pid
            for module in ("services.allocation", "services.edge", "oidc_provider_mock")
            for pid in _children(up.pid, module)
        ]
        os.kill(first, signal.SIGKILL)
        async with asyncio.timeout(120):
            while True:  # started again by the supervisor, on the same address
                again = [p for p in _children(up.pid, "services.allocation") if p != first]
                if again and await _ready(urls["allocation"]):
                    break
                await asyncio.sleep(0.2)
        everything += again

        down = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "deploy", "--state-dir", str(state), "down"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert down.returncode == 0 and "stopped" in down.stdout, down.stdout + down.stderr
        assert await asyncio.wait_for(up.wait(), 30) == 0
        assert not [pid for pid in everything if _alive(pid)]
        assert not (state / "up.pid").exists()
    finally:
        if up.returncode is None:
            up.kill()
            await up.wait()
