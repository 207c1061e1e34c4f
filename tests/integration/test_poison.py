"""TR08 over the real broker and database: oversized and unstorable input is refused at the edge
with a clear answer; what reaches a topic anyway is dead-lettered without blocking its
partition; a row the relay cannot publish is parked while the rest flow, and an operator lists
and replays it."""

from __future__ import annotations

import uuid

import httpx
import sqlalchemy as sa

from contracts import Actor, CommandRejected, Envelope, Topics
from contracts.allocation import PreviewBulkAssign, ReceiveReferral
from contracts.limits import MAX_RECORD_BYTES, STRING_MAX
from deploy.identity import SignedInUsers
from services.shared.auth import HEADER, SigningKey
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

OFFICER = Actor(user_id="so-hub", position_id="pos-so-hub")


def _referral(name: str = "Pat") -> ReceiveReferral:
    return ReceiveReferral(person_id=f"P-{uuid.uuid4().hex[:8]}", person_name=name)


async def _post(
    edge: httpx.AsyncClient, users: SignedInUsers, type_: str, body: object
) -> httpx.Response:
    headers = await users.headers(OFFICER.user_id)
    headers["X-Acting-Position"] = str(OFFICER.position_id)
    return await edge.post(
        f"/commands/{type_}", params={"wait": "false"}, json=body, headers=headers
    )


async def _publish_signed(
    commands: CommandClient, key: SigningKey, envelope: Envelope, value: bytes | None = None
) -> None:
    """To allocation.commands as the edge publishes it, all under one key (one partition)."""
    await commands.publish_signed(
        key, envelope, Topics.ALLOCATION_COMMANDS, value=value, record_key="same-key"
    )


async def test_tr08_a_name_over_its_limit_is_refused_at_the_edge_naming_the_field(
    edge: httpx.AsyncClient, users: SignedInUsers
) -> None:
    body = {"person_id": "P-long", "person_name": "x" * (STRING_MAX + 1)}
    response = await _post(edge, users, ReceiveReferral.TYPE, body)
    assert response.status_code == 400
    assert "person_name" in response.text and f"at most {STRING_MAX}" in response.text


async def test_tr08_a_nul_character_is_refused_as_invalid_input_in_plain_words(
    edge: httpx.AsyncClient, users: SignedInUsers
) -> None:
    body = {"person_id": "P-nul", "person_name": "Ada\u0000Lovelace"}
    response = await _post(edge, users, ReceiveReferral.TYPE, body)
    assert response.status_code == 400
    assert "NUL" in response.text and "person_name" in response.text
    assert "asyncpg" not in response.text and "internal" not in response.text


async def test_tr08_a_preview_of_33000_items_is_refused_at_the_edge(
    edge: httpx.AsyncClient, users: SignedInUsers
) -> None:
    body = {"work_item_ids": [str(uuid.uuid4()) for _ in range(33_000)], "to_position_id": "p"}
    response = await _post(edge, users, PreviewBulkAssign.TYPE, body)
    assert response.status_code == 413 and response.json()["rule"] == "TR08"


async def test_tr08_a_preview_of_20000_items_on_the_topic_is_refused_and_its_partition_flows(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    """Past the edge (a producer with a key): refused as invalid, not re-read forever. (33,000
    ids do not fit in one record at all: the broker refuses them.)"""
    payload = {"work_item_ids": [str(uuid.uuid4()) for _ in range(20_000)], "to_position_id": "p"}
    huge = Envelope(type=PreviewBulkAssign.TYPE, payload=payload, actor=OFFICER)
    await _publish_signed(commands, edge_key, huge)
    after = Envelope.wrap(_referral(), actor=OFFICER)
    await _publish_signed(commands, edge_key, after)  # same key: same partition, behind it
    (refusal,) = await event_log.outcome(huge.message_id, timeout=60)
    rejected = CommandRejected.model_validate(refusal.payload)
    assert rejected.rule == "schema" and "work_item_ids" in rejected.reason
    # a referral's outcome is a v1 and a v2 `work_item_created`, each once
    outcome = await event_log.outcome(after.message_id, timeout=60)
    assert sorted(e.type for e in outcome) == [
        "allocation.work_item_created.v1",
        "allocation.work_item_created.v2",
    ]


async def test_tr08_a_record_over_the_limit_is_dead_lettered_cut_to_fit_and_the_next_applies(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    big = Envelope.wrap(_referral(), actor=OFFICER)
    value = big.model_dump_json().encode()
    value = value[:-1] + b', "padding": "' + b"x" * MAX_RECORD_BYTES + b'"}'
    await _publish_signed(commands, edge_key, big, value)
    after = Envelope.wrap(_referral(), actor=OFFICER)
    await _publish_signed(commands, edge_key, after)
    # a referral's outcome is a v1 and a v2 `work_item_created`, each once
    outcome = await event_log.outcome(after.message_id, timeout=60)
    assert sorted(e.type for e in outcome) == [
        "allocation.work_item_created.v1",
        "allocation.work_item_created.v2",
    ]

    def dead_letter() -> object:
        for record in event_log.records:
            headers = {k: bytes(v).decode() for k, v in record.headers or ()}
            if record.topic == "allocation.commands.dlq" and headers.get(
                "dlq-original-bytes"
            ) == str(len(value)):
                return record, headers
        return None

    record, headers = await event_log.wait_for(dead_letter, timeout=60)
    assert headers["dlq-reason"].startswith("TR08") and headers["dlq-truncated"] == "true"
    assert len(record.value) < MAX_RECORD_BYTES and HEADER not in headers


async def test_tr08_a_row_the_broker_cannot_take_is_parked_and_the_rest_flow(
    allocation: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    outbox = allocation.runtime.spec.outbox
    too_big = b"x" * (MAX_RECORD_BYTES + 10)
    async with allocation.runtime.engine.begin() as conn:
        row_id = await conn.scalar(
            outbox.insert()
            .values(topic=Topics.ALLOCATION_EVENTS, key="k", value=too_big, headers={})
            .returning(outbox.c.id)
        )
    allocation.runtime.relay.wake()
    after = await commands.send(_referral(), OFFICER)
    # a referral's outcome is a v1 and a v2 `work_item_created`, each once
    outcome = await event_log.outcome(after.message_id, timeout=60)  # the relay went on
    assert sorted(e.type for e in outcome) == [
        "allocation.work_item_created.v1",
        "allocation.work_item_created.v2",
    ]
    listed = await allocation.get("operator", "/outbox/parked")
    assert listed.status_code == 200
    (row,) = [r for r in listed.json() if r["id"] == row_id]
    assert row["reason"].startswith("TR08") and row["bytes"] == len(too_big)
    assert (await allocation.get("so-hub", "/outbox/parked")).status_code == 403
    async with allocation.runtime.engine.connect() as conn:
        left = await conn.scalar(sa.select(sa.func.count()).where(outbox.c.id == row_id))
    assert left == 0


async def test_tr08_an_operator_replays_a_parked_row_and_it_is_published(
    allocation: RunningService, event_log: EventLog
) -> None:
    parked = allocation.runtime.spec.parked
    marker = Envelope.wrap(
        CommandRejected(command_id=uuid.uuid4(), command_type="replay", rule="TR08", reason="x")
    )
    row_id = 10**15 + uuid.uuid4().int % 10**9  # far above the outbox's own ids
    async with allocation.runtime.engine.begin() as conn:
        await conn.execute(
            parked.insert().values(
                id=row_id,
                topic=Topics.ALLOCATION_EVENTS,
                key="k",
                value=marker.model_dump_json().encode(),
                headers={"type": marker.type},
                reason="refused by the broker: a fault since mended",
            )
        )
    assert (
        await allocation.post("so-hub", f"/outbox/parked/{row_id}/replay", {})
    ).status_code == 403
    replayed = await allocation.post("operator", f"/outbox/parked/{row_id}/replay", {})
    assert replayed.status_code == 202
    await event_log.wait_for(
        lambda: any(e.message_id == marker.message_id for e in event_log.envelopes()), timeout=60
    )
    assert (
        await allocation.post("operator", f"/outbox/parked/{row_id}/replay", {})
    ).status_code == 404
