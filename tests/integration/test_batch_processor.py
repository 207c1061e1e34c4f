"""The batch processor against the real PostgreSQL, fed records directly: poison records,
refusals after writes, staged writes and duplicates inside one batch."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from casework_testing.edge import signed_record
from contracts import Actor, CommandRejected, Envelope, Topics
from contracts.access import UnitDefined, UnitKind
from contracts.allocation import ReceiveReferral
from services.shared.auth import HEADER, AssertionVerifier, SigningKey, key_set
from services.shared.consumer import BatchProcessor
from services.shared.outbox import OutboxRelay
from services.shared.plumbing_tables import inbox_table, outbox_table, outcome_table, parked_table
from services.shared.rules import RuleViolation
from services.shared.transaction import Dispatcher, HandlerContext
from tests.support.infra import Infra

SCHEMA = f"probe_{uuid.uuid4().hex[:8]}"
metadata = sa.MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
outcome_rows = outcome_table(metadata)
parked = parked_table(metadata)
people = sa.Table(
    "people",
    metadata,
    sa.Column("person_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text),
)
UPSERT = pg_insert(people)
UPSERT = UPSERT.on_conflict_do_update(
    index_elements=[people.c.person_id], set_={"name": UPSERT.excluded.name}
)
ACTOR = Actor(user_id="tester", position_id="pos")

dispatcher = Dispatcher()


@dispatcher.on(ReceiveReferral)
async def handle(ctx: HandlerContext[ReceiveReferral]) -> None:
    name = ctx.message.person_name
    if name == "poison":
        raise RuntimeError("a bug in a handler")
    if name == "too-many-parameters":
        # asyncpg's limit is 32,767 parameters: a statement the driver refuses, not a busy
        # database, so nothing is gained by reading the record again.
        await ctx.execute(
            sa.select(people.c.name).where(people.c.person_id.in_([str(i) for i in range(33_000)]))
        )
    if name == "slow":
        await ctx.execute(sa.select(sa.func.pg_sleep(0.3)))
    if name.startswith("staged"):
        ctx.stage(UPSERT, {"person_id": ctx.message.person_id, "name": name}, ("person_id",))
        # A read in the same batch sees what was staged before it.
        seen = await ctx.conn.scalar(sa.select(sa.func.count()).select_from(people))
        ctx.emit(
            CommandRejected(
                command_id=ctx.envelope.message_id,
                command_type="seen",
                rule="none",
                reason=str(seen),
            )
        )
        return
    await ctx.execute(people.insert().values(person_id=ctx.message.person_id, name=name))
    if name == "refuse-after-write":
        raise RuleViolation("AL02", "refused after writing")
    ctx.emit(
        CommandRejected(
            command_id=ctx.envelope.message_id, command_type="ok", rule="none", reason="applied"
        )
    )


@dispatcher.on(UnitDefined)
async def unit_defined(ctx: HandlerContext[UnitDefined]) -> None:
    """An event this probe service reads: each unit becomes a row (its name)."""
    await ctx.execute(people.insert().values(person_id=ctx.message.unit_id, name="unit"))


@pytest.fixture(scope="module")
async def engine(infra: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(infra.database_url)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'create schema "{SCHEMA}"'))
        await conn.run_sync(metadata.create_all)
    yield engine
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'drop schema "{SCHEMA}" cascade'))
    await engine.dispose()


@pytest.fixture(scope="module")
def keys() -> SigningKey:
    """The test plays the edge: it signs each record's assertion with a key of its own."""
    return SigningKey.generate()


def processor(
    engine: AsyncEngine, keys: SigningKey, publisher: OutboxRelay | None = None
) -> BatchProcessor:
    return BatchProcessor(
        publisher=publisher,
        engine=engine,
        outbox_table=outbox,
        inbox_table=inbox,
        outcome_table=outcome_rows,
        dispatcher=dispatcher,
        verifier=AssertionVerifier(key_set(keys)),
        event_topic=Topics.ALLOCATION_EVENTS,
    )


_offset = iter(range(10**9))


def record(envelope: Envelope, keys: SigningKey | None) -> ConsumerRecord[Any, Any]:
    """A record as the broker would deliver it; `keys`: signed as an edge would (commands)."""
    value, headers = envelope.model_dump_json().encode(), list[tuple[str, bytes]]()
    if keys is not None and envelope.actor is not None:
        value, headers = signed_record(keys, envelope, Topics.ALLOCATION_COMMANDS)
    return ConsumerRecord(
        topic=Topics.ALLOCATION_COMMANDS,
        partition=0,
        offset=next(_offset),
        timestamp=int(time.time() * 1000),
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=1,
        headers=headers,
    )


def referral(name: str) -> Envelope:
    command = ReceiveReferral(person_id=f"P-{uuid.uuid4().hex[:8]}", person_name=name)
    return Envelope.wrap(command, actor=ACTOR)


async def outbox_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.begin() as conn:
        rows = (await conn.execute(sa.select(outbox).order_by(outbox.c.id))).all()
        await conn.execute(outbox.delete())
    return list(rows)


def outcomes(rows: list[Any]) -> dict[uuid.UUID, CommandRejected]:
    found = {}
    for row in rows:
        if row.topic == Topics.ALLOCATION_EVENTS:
            envelope = Envelope.model_validate_json(bytes(row.value))
            found[envelope.causation_id] = CommandRejected.model_validate(envelope.payload)
    return found  # type: ignore[return-value]


async def test_poison_record_is_dead_lettered_alone_and_the_rest_apply(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    batch = [referral("first"), referral("poison"), referral("last")]
    await processor(engine, keys).process([record(e, keys) for e in batch])
    rows = await outbox_rows(engine)
    dead = [r for r in rows if r.topic == "allocation.commands.dlq"]
    assert len(dead) == 1 and "a bug in a handler" in dead[0].headers["dlq-reason"]
    answers = outcomes(rows)
    assert answers[batch[0].message_id].reason == "applied"
    assert answers[batch[1].message_id].rule == "internal-error"
    assert answers[batch[2].message_id].reason == "applied"


async def test_refusal_after_a_write_rolls_back_only_that_command(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    batch = [referral("before"), referral("refuse-after-write"), referral("after")]
    await processor(engine, keys).process([record(e, keys) for e in batch])
    answers = outcomes(await outbox_rows(engine))
    assert answers[batch[1].message_id].rule == "AL02"
    async with engine.connect() as conn:
        names = set((await conn.execute(sa.select(people.c.name))).scalars())
    assert {"before", "after"} <= names
    assert "refuse-after-write" not in names


async def test_staged_rows_are_visible_to_later_reads_and_duplicates_apply_once(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    async with engine.begin() as conn:
        before = int(await conn.scalar(sa.select(sa.func.count()).select_from(people)) or 0)
    first, second = referral("staged-1"), referral("staged-2")
    batch = [first, first, second]  # the first command delivered twice in one batch
    await processor(engine, keys).process([record(e, keys) for e in batch])
    rows = await outbox_rows(engine)
    assert len([r for r in rows if r.topic == Topics.ALLOCATION_EVENTS]) == 2  # not 3
    answers = outcomes(rows)
    assert int(answers[first.message_id].reason) == before + 1
    assert int(answers[second.message_id].reason) == before + 2


async def test_event_types_this_service_does_not_read_are_skipped_not_dead_lettered(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    other = Envelope.wrap(
        CommandRejected(command_id=uuid.uuid4(), command_type="x", rule="AL01", reason="r")
    )
    rec = record(other, None)
    rec.topic = Topics.ACCESS_EVENTS
    unknown = record(Envelope(type="access.from_the_future.v9", payload={}), None)
    unknown.topic = Topics.ACCESS_EVENTS
    await processor(engine, keys).process([rec, unknown])
    assert await outbox_rows(engine) == []


async def people_named(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(people).where(people.c.name == name)
        return int(await conn.scalar(query) or 0)


async def test_tr08_a_statement_the_driver_refuses_is_dead_lettered_not_retried(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    batch = [referral("too-many-parameters"), referral("after-the-refused-one")]
    await processor(engine, keys).process([record(e, keys) for e in batch])  # does not raise
    rows = await outbox_rows(engine)
    dead = [r for r in rows if r.topic == "allocation.commands.dlq"]
    assert len(dead) == 1 and "32767" in dead[0].headers["dlq-reason"]
    answers = outcomes(rows)
    assert answers[batch[0].message_id].rule == "internal-error"
    assert "32767" not in answers[batch[0].message_id].reason  # the caller gets no driver text
    assert answers[batch[1].message_id].reason == "applied"


async def test_two_instances_holding_one_partition_apply_a_record_once(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    """Claim-first inbox: the second transaction waits on the first one's claim, then skips."""
    command = referral("slow")
    copy = record(command, keys)
    await asyncio.gather(
        processor(engine, keys).process([copy]), processor(engine, keys).process([copy])
    )
    assert await people_named(engine, "slow") == 1
    rows = await outbox_rows(engine)
    events = [r for r in rows if r.topic == Topics.ALLOCATION_EVENTS]
    # The second instance announces the first one's outcome again: the same message.
    assert len({Envelope.model_validate_json(bytes(r.value)).message_id for r in events}) == 1


async def test_a_duplicate_command_announces_its_outcome_again(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    command = referral("announced")
    await processor(engine, keys).process([record(command, keys)])
    first = [r for r in await outbox_rows(engine) if r.topic == Topics.ALLOCATION_EVENTS]
    await processor(engine, keys).process([record(command, keys)])  # sent again, later offset
    again = [r for r in await outbox_rows(engine) if r.topic == Topics.ALLOCATION_EVENTS]
    assert await people_named(engine, "announced") == 1  # one effect
    assert [bytes(r.value) for r in again] == [bytes(r.value) for r in first]  # same outcome


async def test_tr02_a_refused_assertion_does_not_use_up_the_command_id(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    command = referral("refused-then-valid")
    unsigned = record(command, None)
    await processor(engine, keys).process([unsigned])
    await processor(engine, keys).process([unsigned])  # the refused record redelivered
    refused = outcomes(await outbox_rows(engine))
    assert refused[command.message_id].rule == "TR02"
    await processor(engine, keys).process([record(command, keys)])  # the same id, signed
    answers = outcomes(await outbox_rows(engine))
    assert answers[command.message_id].reason == "applied"
    assert await people_named(engine, "refused-then-valid") == 1


async def test_unparsable_records_at_one_offset_of_a_recreated_topic_are_both_dead_lettered(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    first, second = record(referral("x"), None), record(referral("y"), None)
    for rec, value in ((first, b"not json at all"), (second, b"{also not an envelope")):
        rec.value, rec.offset = value, 7  # the topic lost and made again: offsets start over
    await processor(engine, keys).process([first])
    await processor(engine, keys).process([second])
    dead = [r for r in await outbox_rows(engine) if r.topic == "allocation.commands.dlq"]
    assert [bytes(r.value) for r in dead] == [b"not json at all", b"{also not an envelope"]


async def test_tr08_a_record_over_the_limit_is_dead_lettered_whole_within_the_limit(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    big = record(referral("big"), keys)
    big.value = b'{"padding": "' + b"x" * 2_000 + b'"}'
    small = BatchProcessor(
        engine=engine,
        outbox_table=outbox,
        inbox_table=inbox,
        outcome_table=outcome_rows,
        dispatcher=dispatcher,
        verifier=AssertionVerifier(key_set(keys)),
        event_topic=Topics.ALLOCATION_EVENTS,
        max_record_bytes=1_500,
    )
    await small.process([big])
    (dead,) = await outbox_rows(engine)
    assert dead.headers["dlq-reason"].startswith("TR08")
    assert dead.headers["dlq-truncated"] == "true"
    assert dead.headers["dlq-original-bytes"] == str(len(big.value))
    assert HEADER not in dead.headers  # credentials are not copied (TR07)
    assert len(bytes(dead.value)) + sum(len(k) + len(v) for k, v in dead.headers.items()) < 1_500


async def test_an_event_with_a_field_newer_than_its_reader_is_applied(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    """A rolling deploy: the producer is a release ahead and its event carries a field this
    reader does not know yet; the event is read without it, not dead-lettered."""
    unit = UnitDefined(unit_id=f"U-{uuid.uuid4().hex[:8]}", name="North", kind=UnitKind.TEAM)
    newer = Envelope.wrap(unit)
    newer.payload["added_in_a_later_release"] = {"any": "value"}
    rec = record(newer, None)
    rec.topic = Topics.ACCESS_EVENTS
    await processor(engine, keys).process([rec])
    assert await outbox_rows(engine) == []  # nothing dead-lettered
    async with engine.connect() as conn:
        applied = await conn.scalar(
            sa.select(people.c.name).where(people.c.person_id == unit.unit_id)
        )
    assert applied == "unit"


async def test_tr08_a_command_with_a_field_its_model_lacks_is_refused(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    """Commands stay strict: what a caller sends is checked whole."""
    command = referral("extra-field")
    command.payload["added_by_the_caller"] = "x"
    await processor(engine, keys).process([record(command, keys)])
    rows = await outbox_rows(engine)
    dead = [r for r in rows if r.topic == "allocation.commands.dlq"]
    assert len(dead) == 1 and "added_by_the_caller" in dead[0].headers["dlq-reason"]
    refused = outcomes(rows)[command.message_id]
    assert refused.rule == "schema" and "added_by_the_caller" in refused.reason
    assert await people_named(engine, "extra-field") == 0


class RecordingBroker:
    """Stands in for the broker: records what is published, in order."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes | None, bytes]] = []

    async def publish(
        self, value: bytes, topic: str, *, key: bytes | None, headers: dict[str, str], **_: Any
    ) -> asyncio.Future[None]:
        self.published.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def memory_relay(engine: AsyncEngine, broker: RecordingBroker) -> OutboxRelay:
    # A poll interval longer than the test: only the passes the test runs.
    return OutboxRelay(
        engine,
        outbox,
        cast(KafkaBroker, broker),
        parked=parked,
        poll_seconds=3600,
        from_memory=True,
    )


async def table_ids(engine: AsyncEngine) -> set[int]:
    async with engine.connect() as conn:
        return set((await conn.execute(sa.select(outbox.c.id))).scalars())


def published_causes(broker: RecordingBroker) -> list[uuid.UUID | None]:
    return [
        Envelope.model_validate_json(value).causation_id
        for topic, _, value in broker.published
        if topic == Topics.ALLOCATION_EVENTS and value.startswith(b"{")
    ]


async def test_from_memory_an_older_row_of_another_writer_is_published_first(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    """Order per key: a row another instance (or a crashed run) left in the outbox, older than
    the batch's, is published before the batch's events, by a table pass, not overtaken by the
    memory path."""
    await outbox_rows(engine)  # a clean outbox
    broker = RecordingBroker()
    relay = memory_relay(engine, broker)
    await relay.run_pass()  # the first pass: the table, empty
    async with engine.begin() as conn:
        await conn.execute(
            outbox.insert().values(topic=Topics.ALLOCATION_EVENTS, key="k", value=b"older")
        )
    batch = [referral("first"), referral("second")]
    await processor(engine, keys, relay).process([record(e, keys) for e in batch])
    await relay.run_pass()
    values = [value for _, _, value in broker.published]
    assert values[0] == b"older"
    assert published_causes(broker) == [batch[0].message_id, batch[1].message_id]
    assert await table_ids(engine) == set()  # the table pass deleted what it published
    await relay.stop()


async def test_from_memory_published_rows_are_deleted_by_the_next_batch(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    await outbox_rows(engine)
    broker = RecordingBroker()
    relay = memory_relay(engine, broker)
    await relay.run_pass()
    first = referral("first")
    await processor(engine, keys, relay).process([record(first, keys)])
    written = await table_ids(engine)
    assert len(written) == 1
    await relay.run_pass()
    assert published_causes(broker) == [first.message_id]  # from memory
    assert await table_ids(engine) == written  # published, not yet deleted
    second = referral("second")
    await processor(engine, keys, relay).process([record(second, keys)])
    left = await table_ids(engine)
    assert not left & written and len(left) == 1  # the first's row deleted in the second's
    await relay.run_pass()
    assert published_causes(broker) == [first.message_id, second.message_id]  # once each
    await relay.stop()


async def test_from_memory_nothing_is_published_while_another_relay_holds_the_lock(
    engine: AsyncEngine, keys: SigningKey
) -> None:
    """One relay per service publishes at a time: the memory path takes the same lock."""
    await outbox_rows(engine)
    broker = RecordingBroker()
    relay = memory_relay(engine, broker)
    await relay.run_pass()
    command = referral("while-locked")
    async with engine.connect() as other:
        await other.execute(sa.text(f"select pg_advisory_xact_lock(hashtext('outbox:{SCHEMA}'))"))
        await processor(engine, keys, relay).process([record(command, keys)])
        await relay.run_pass()
        assert broker.published == []
        await other.rollback()
    await relay.run_pass()  # the lock free: the table pass publishes the row
    assert published_causes(broker) == [command.message_id]
    assert await table_ids(engine) == set()
    await relay.stop()
