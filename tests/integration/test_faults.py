"""Crash tests: the allocation service runs as a real process and is killed with SIGKILL at
chosen points (failpoints) or at random while it works, then restarted. Nothing is lost and
nothing has a second effect.

These tests start a broker of their own and a database of their own, so that a killed process
and its replays cannot disturb the rest of the suite."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from contracts import Actor, Envelope
from contracts.allocation import ReceiveReferral, WorkItemCreated
from deploy.identity import SignedInUsers
from services.shared.auth import SigningKey
from services.shared.settings import Settings
from tests.support.client import CommandClient, EventLog, clients_on
from tests.support.infra import Infra, isolated_infrastructure
from tests.support.processes import KillableService

pytestmark = pytest.mark.faults
OFFICER = Actor(user_id="so-hub", position_id="pos-so-hub")


class Isolated(KillableService):
    """The allocation service as a process of its own on the isolated broker and database."""

    def __init__(self, bootstrap: str, database_url: str, keys: SigningKey) -> None:
        super().__init__("allocation", bootstrap=bootstrap, database_url=database_url, keys=keys)

    async def count(self, sql: str, **params: object) -> int:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(sa.text(sql), params) or 0)
        finally:
            await engine.dispose()


@pytest.fixture(scope="module")
def isolated_infra(infra: Infra) -> Iterator[tuple[str, str]]:
    with isolated_infrastructure(infra, "faults") as found:
        yield found


@pytest.fixture
async def isolated(
    isolated_infra: tuple[str, str], edge_key: SigningKey
) -> AsyncIterator[Isolated]:
    env = Isolated(*isolated_infra, edge_key)
    yield env
    env.kill()


@pytest.fixture(scope="module")
async def isolated_clients(
    isolated_infra: tuple[str, str],
    settings_for: Callable[..., Settings],
    edge_key: SigningKey,
    users: SignedInUsers,
) -> AsyncIterator[tuple[CommandClient, EventLog]]:
    """People's commands through an edge of their own on the isolated broker."""
    bootstrap, _ = isolated_infra
    settings = settings_for(
        "edge", kafka_bootstrap_servers=bootstrap, assertion_signing_key=edge_key.dumps()
    )
    async with clients_on(bootstrap, settings, users) as clients:
        yield clients


def _referral() -> ReceiveReferral:
    return ReceiveReferral(person_id=f"P-{uuid.uuid4().hex[:10]}", person_name="Kill Test")


async def test_killed_after_commit_before_publish_publishes_on_restart(
    isolated: Isolated, isolated_clients: tuple[CommandClient, EventLog]
) -> None:
    commands, events = isolated_clients
    isolated.spawn(failpoint="after_commit_before_publish")
    referral = _referral()
    sent = await commands.send(referral, OFFICER)
    assert await isolated.died() == -signal.SIGKILL
    # Committed: the state and the unpublished event are in the database; nothing on the topic.
    assert (
        await isolated.count(
            "select count(*) from allocation.work_items where person_id = :p", p=referral.person_id
        )
        == 1
    )
    assert await isolated.count("select count(*) from allocation.outbox") >= 1
    assert events.caused_by(sent.message_id) == []

    isolated.spawn()
    (event, _v2) = await events.outcome(sent.message_id, timeout=60)  # v1, then v2 beside it
    assert event.type == WorkItemCreated.TYPE
    assert (
        await isolated.count(
            "select count(*) from allocation.work_items where person_id = :p", p=referral.person_id
        )
        == 1
    )


async def test_killed_before_commit_applies_once_after_restart(
    isolated: Isolated, isolated_clients: tuple[CommandClient, EventLog]
) -> None:
    commands, events = isolated_clients
    isolated.spawn(failpoint="before_commit")
    referral = _referral()
    sent = await commands.send(referral, OFFICER)
    assert await isolated.died() == -signal.SIGKILL
    assert (
        await isolated.count(
            "select count(*) from allocation.work_items where person_id = :p", p=referral.person_id
        )
        == 0
    )

    isolated.spawn()
    await events.outcome(sent.message_id, timeout=60)
    assert (
        await isolated.count(
            "select count(*) from allocation.work_items where person_id = :p", p=referral.person_id
        )
        == 1
    )
    assert (
        await isolated.count(
            "select count(*) from allocation.inbox where message_id = :m", m=sent.message_id
        )
        == 1
    )


def _once_each(outcome: list[Envelope]) -> bool:
    """A command's outcome, as a subscriber's inbox sees it, holds each event type once (a
    referral's `work_item_created` v1 and v2): applied twice, a type would come twice, with
    two message ids."""
    types = [e.type for e in outcome]
    return bool(types) and len(types) == len(set(types))


async def test_killed_at_random_while_working_loses_and_doubles_nothing(
    isolated: Isolated, isolated_clients: tuple[CommandClient, EventLog]
) -> None:
    """300 commands; the process is killed while it works through them, then restarted. Every
    command has exactly one effect and one outcome (a republished event keeps its message id)."""
    commands, events = isolated_clients
    isolated.spawn()
    referrals = [_referral() for _ in range(300)]
    sent: list[Envelope] = []
    for referral in referrals[:150]:
        sent.append(await commands.send(referral, OFFICER))
    # Kill once the service is visibly part-way through.
    await events.wait_for(lambda: any(events.caused_by(s.message_id) for s in sent[:5]), 60)
    isolated.kill()
    for referral in referrals[150:]:
        sent.append(await commands.send(referral, OFFICER))
    isolated.spawn()
    await events.wait_for(lambda: all(events.caused_by(s.message_id) for s in sent), 120)

    for envelope in sent:
        assert _once_each(events.caused_by(envelope.message_id)), envelope.message_id
    persons = [r.person_id for r in referrals]
    assert (
        await isolated.count(
            "select count(*) from allocation.work_items where person_id = any(:p)", p=persons
        )
        == 300
    )
    assert (
        await isolated.count(
            "select count(distinct person_id) from allocation.work_items where person_id = any(:p)",
            p=persons,
        )
        == 300
    )


async def test_two_instances_share_the_work_and_one_killed_loses_and_doubles_nothing(
    isolated_infra: tuple[str, str],
    edge_key: SigningKey,
    isolated_clients: tuple[CommandClient, EventLog],
) -> None:
    """Scale-out: two instances in one consumer group split the partitions; one is killed
    mid-stream, the survivor takes its partitions over (rebalance) and every command still has
    exactly one effect and one outcome."""
    commands, events = isolated_clients
    first, second = Isolated(*isolated_infra, edge_key), Isolated(*isolated_infra, edge_key)
    try:
        first.spawn()
        second.spawn()
        referrals = [_referral() for _ in range(300)]
        sent = [await commands.send(r, OFFICER) for r in referrals[:150]]
        await events.wait_for(
            lambda: sum(bool(events.caused_by(s.message_id)) for s in sent) >= 20, 90
        )
        second.kill()
        sent += [await commands.send(r, OFFICER) for r in referrals[150:]]
        await events.wait_for(lambda: all(events.caused_by(s.message_id) for s in sent), 120)
    finally:
        first.kill()
        second.kill()

    for envelope in sent:
        assert _once_each(events.caused_by(envelope.message_id)), envelope.message_id
    persons = [r.person_id for r in referrals]
    assert (
        await first.count(
            "select count(*) from allocation.work_items where person_id = any(:p)", p=persons
        )
        == 300
    )
