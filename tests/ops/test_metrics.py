"""Operations metrics over the real broker and PostgreSQL: the consumer lag rising while the
service cannot consume and falling back when it can, the outbox backlog equal to the
unpublished rows while the relay is held off, HTTP requests counted by route template, the
command latency histogram observed, and /livez failing on a stalled consumer.

The sign-off service runs here on a broker and a database of its own, so that lag and backlog
are exactly what these tests produced."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from contracts import Actor, CommandRejected, Envelope
from contracts.signoff import SendRequest
from deploy.identity import SignedInUsers
from services.shared.auth import SigningKey
from services.shared.settings import Settings
from tests.conftest import RunningService, start_service
from tests.support.client import CommandClient, EventLog, clients_on
from tests.support.infra import Infra, isolated_infrastructure

SENIOR_OFFICER = Actor(user_id="so-mgmt", position_id="pos-so-mgmt")
COMMANDS = "signoff.commands"


@pytest.fixture(scope="module")
def ops_infra(infra: Infra) -> Iterator[tuple[str, str]]:
    with isolated_infrastructure(infra, "ops_metrics") as found:
        yield found


@pytest.fixture(scope="module")
async def ops_clients(
    ops_infra: tuple[str, str],
    settings_for: Callable[..., Settings],
    edge_key: SigningKey,
    users: SignedInUsers,
) -> AsyncIterator[tuple[CommandClient, EventLog]]:
    bootstrap, _ = ops_infra
    settings = settings_for(
        "edge", kafka_bootstrap_servers=bootstrap, assertion_signing_key=edge_key.dumps()
    )
    async with clients_on(bootstrap, settings, users) as clients:
        yield clients


@pytest.fixture(scope="module")
async def signoff(
    ops_infra: tuple[str, str], settings_for: Callable[..., Settings], users: SignedInUsers
) -> AsyncIterator[RunningService]:
    from services.signoff.service import SPEC

    bootstrap, database_url = ops_infra
    service = await start_service(
        SPEC,
        settings_for(
            "signoff",
            kafka_bootstrap_servers=bootstrap,
            database_url=database_url,
            metrics_interval_seconds=0.1,
            liveness_stall_seconds=1.0,
            relay_poll_seconds=0.1,
        ),
        users,
    )

    # Joined the group, so that its lag is its own work (and /livez judges it).
    async def joined() -> bool:
        return bool(service.runtime.assigned_partitions())

    await until(joined, "partitions assigned")
    yield service
    await service.http.aclose()
    await service.runtime.stop()


@pytest.fixture
async def database(ops_infra: tuple[str, str]) -> AsyncIterator[Any]:
    engine = create_async_engine(ops_infra[1])
    yield engine
    await engine.dispose()


async def until(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    """Polls `probe` until it returns something truthy: waits on the outcome, not on a time."""
    deadline = time.monotonic() + timeout
    while not (result := await probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached in {timeout:.0f}s: {what}")
        await asyncio.sleep(0.05)
    return result


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    """An app's /metrics, by sample name and labels."""
    text = (await http.get("/metrics")).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float | None:
    """The sum of the samples of `name` carrying `labels` (None: no such series)."""
    values = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    return sum(values) if values else None


async def command_lag(service: RunningService) -> float | None:
    group = service.runtime.settings.group_id
    return total(await scrape(service.http), "casework_consumer_lag", group=group, topic=COMMANDS)


async def send_requests(commands: CommandClient, count: int) -> list[Envelope]:
    """Commands the service refuses (no such step): each has an outcome all the same."""
    return [
        await commands.send(
            SendRequest(step_id=uuid.uuid4(), person_id=f"P-ops-{uuid.uuid4().hex[:8]}"),
            SENIOR_OFFICER,
        )
        for _ in range(count)
    ]


class held:
    """A transaction of the test's that holds a lock until the block ends."""

    def __init__(self, engine: Any, statement: str) -> None:
        self.engine = engine
        self.statement = statement

    async def __aenter__(self) -> AsyncConnection:
        self.conn: AsyncConnection = await self.engine.connect()
        self.tx = await self.conn.begin()
        await self.conn.execute(sa.text(self.statement))
        return self.conn

    async def __aexit__(self, *_: object) -> None:
        await self.tx.rollback()
        await self.conn.close()


async def test_metrics_consumer_lag_rises_under_load_and_falls_back(
    signoff: RunningService, ops_clients: tuple[CommandClient, EventLog], database: Any
) -> None:
    commands, events = ops_clients
    await until(lambda: _lag_is(signoff, 0), "no lag before the load")
    # The inbox locked: every batch waits, nothing is committed, offsets stand still.
    async with held(database, "lock table signoff.inbox in access exclusive mode"):
        sent = await send_requests(commands, 20)
        await until(lambda: _lag_is(signoff, 20), "lag of the 20 commands")
        assert events.caused_by(sent[-1].message_id) == []
    await until(lambda: _lag_is(signoff, 0), "lag back to 0")
    for envelope in sent:
        (outcome,) = await events.outcome(envelope.message_id)
        assert outcome.type == CommandRejected.TYPE


async def test_metrics_livez_fails_while_the_consumer_is_stalled(
    signoff: RunningService, ops_clients: tuple[CommandClient, EventLog], database: Any
) -> None:
    commands, events = ops_clients
    assert (await signoff.http.get("/livez")).status_code == 200
    async with held(database, "lock table signoff.inbox in access exclusive mode"):
        (sent,) = await send_requests(commands, 1)
        stalled = await until(lambda: _status(signoff, "/livez", 503), "/livez failing")
        assert stalled.json()["stalled"] == ["consumer"]
        # Liveness is not readiness: the database and the broker still answer.
        assert (await signoff.http.get("/readyz")).status_code == 200
    await events.outcome(sent.message_id)
    await until(lambda: _status(signoff, "/livez", 200), "/livez passing again")


async def test_metrics_outbox_backlog_equals_the_unpublished_rows(
    signoff: RunningService, ops_clients: tuple[CommandClient, EventLog], database: Any
) -> None:
    commands, events = ops_clients
    # The relay's lock held by the test: as if another instance were publishing, so the rows
    # stay and this instance must still count them.
    async with held(database, "select pg_advisory_xact_lock(hashtext('outbox:signoff'))"):
        sent = await send_requests(commands, 7)
        # Every outcome committed (the lag gauge could still be from before the commands).
        await until(lambda: _applied(database, sent), "the commands applied")
        async with database.connect() as conn:
            rows = int(await conn.scalar(sa.text("select count(*) from signoff.outbox")) or 0)
        assert rows >= 7  # one rejection each at least
        await until(lambda: _backlog(signoff, rows), f"backlog of {rows}")
        assert events.caused_by(sent[0].message_id) == []
        # Holding the lock elsewhere is not a stall of this relay.
        assert (await signoff.http.get("/livez")).status_code == 200
    for envelope in sent:
        await events.outcome(envelope.message_id)
    await until(lambda: _backlog(signoff, 0), "backlog back to 0")


async def test_metrics_command_latency_observed_from_occurred_at_to_commit(
    signoff: RunningService, ops_clients: tuple[CommandClient, EventLog]
) -> None:
    commands, events = ops_clients
    name = "casework_command_latency_seconds_count"
    before = total(await scrape(signoff.http), name, type=SendRequest.TYPE) or 0.0
    sent = await send_requests(commands, 3)
    for envelope in sent:
        await events.outcome(envelope.message_id)
    samples = await scrape(signoff.http)
    assert total(samples, name, type=SendRequest.TYPE) == before + 3
    assert (total(samples, "casework_command_latency_seconds_sum", type=SendRequest.TYPE) or 0) > 0


async def test_metrics_http_requests_counted_by_route_template(
    signoff: RunningService, ops_clients: tuple[CommandClient, EventLog]
) -> None:
    commands, _ = ops_clients
    route = {"service": "signoff", "method": "GET", "route": "/steps/{step_id}"}
    name = "casework_http_requests_total"
    before = await scrape(signoff.http)
    refused = await signoff.http.get(f"/steps/{uuid.uuid4()}")  # no sign-in
    read = await signoff.get(SENIOR_OFFICER.user_id, f"/steps/{uuid.uuid4()}")
    after = await scrape(signoff.http)
    for response in (refused, read):
        status = str(response.status_code)
        was = total(before, name, **route, status=status) or 0.0
        assert total(after, name, **route, status=status) == was + (
            2 if refused.status_code == read.status_code else 1
        )
    seconds = "casework_http_request_duration_seconds_count"
    assert total(after, seconds, **route) == (total(before, seconds, **route) or 0.0) + 2
    # Paths never become series of their own: an unknown path counts as unmatched.
    unmatched = {"service": "signoff", "method": "GET", "route": "<unmatched>", "status": "404"}
    was = total(after, name, **unmatched) or 0.0
    assert (await signoff.http.get(f"/no-such-path/{uuid.uuid4()}")).status_code == 404
    samples = await scrape(signoff.http)
    assert total(samples, name, **unmatched) == was + 1
    assert not [ls for (n, ls) in samples if n == name and "/no-such-path" in dict(ls)["route"]]

    # The edge counts its requests the same way.
    edge_before = total(
        await scrape(commands.edge), name, route="/commands/{command_type}", status="202"
    )
    await send_requests(commands, 1)
    edge_after = total(
        await scrape(commands.edge), name, route="/commands/{command_type}", status="202"
    )
    assert edge_after == (edge_before or 0.0) + 1


async def _lag_is(service: RunningService, expected: float) -> bool:
    return await command_lag(service) == expected


async def _applied(engine: Any, sent: list[Envelope]) -> bool:
    async with engine.connect() as conn:
        applied = await conn.scalar(
            sa.text("select count(*) from signoff.inbox where message_id = any(:ids)"),
            {"ids": [e.message_id for e in sent]},
        )
    return applied == len(sent)


async def _backlog(service: RunningService, expected: int) -> bool:
    samples = await scrape(service.http)
    return total(samples, "casework_outbox_backlog", service="signoff") == expected


async def _status(service: RunningService, path: str, status: int) -> Any:
    response = await service.http.get(path)
    return response if response.status_code == status else None
