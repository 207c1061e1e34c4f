"""The foundation's guarantees, over the real broker and the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from contracts import Actor, CommandRejected, Envelope, Topics
from contracts.access import AccessKind, PositionGranted, Role
from contracts.allocation import CreateStep, ReceiveReferral, StepType, WorkItemCreated
from services.allocation import store
from tests.allocation.helpers import publish_directory
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

OFFICER = Actor(user_id="so-hub", position_id="pos-so-hub")


def _referral(name: str = "Ada Lovelace") -> ReceiveReferral:
    return ReceiveReferral(person_id=f"P-{uuid.uuid4().hex[:8]}", person_name=name, area="North")


async def _count(service: RunningService, person_id: str) -> int:
    async with service.runtime.engine.connect() as conn:
        return int(
            await conn.scalar(
                sa.select(sa.func.count())
                .select_from(store.work_items)
                .where(store.work_items.c.person_id == person_id)
            )
            or 0
        )


async def test_command_produces_event_after_commit_and_state_is_readable(
    allocation: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    """AL01 over the plumbing: the event is observed only once the work item is committed."""
    referral = _referral()
    sent = await commands.send(referral, OFFICER)
    (event, _v2) = await event_log.outcome(sent.message_id)  # v1, then v2 beside it
    assert event.type == WorkItemCreated.TYPE
    created = WorkItemCreated.model_validate(event.payload)
    assert created.owner_id == "Wellbeing Service Hub Team"
    assert event.correlation_id == sent.correlation_id
    # The event was published after commit, so the state is already there. Read as the Hub
    # Team's Senior Officer (TR05), whose position the projection must know first.
    seat = PositionGranted(
        user_id=OFFICER.user_id,
        position_id=OFFICER.position_id or "",
        unit_id=created.owner_id,
        role=Role.SENIOR_OFFICER,
        kind=AccessKind.PRIMARY,
    )
    await publish_directory(commands, allocation, [seat])
    response = await allocation.get(OFFICER.user_id, f"/work-items/{created.work_item_id}")
    assert response.status_code == 200
    assert response.json()["person_id"] == referral.person_id
    assert response.json()["state"] == "incoming"


async def test_same_command_twice_has_one_effect_and_one_event(
    allocation: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    referral = _referral()
    envelope = commands.envelope(referral, OFFICER)
    await commands.send(referral, OFFICER, envelope=envelope)
    await commands.send(referral, OFFICER, envelope=envelope)
    await event_log.outcome(envelope.message_id)
    # A later command on the same key is applied after both copies (same partition, in order).
    marker = await commands.send(referral.model_copy(update={"reason": "marker"}), OFFICER)
    await event_log.outcome(marker.message_id)
    caused = event_log.caused_by(envelope.message_id)
    assert len([e for e in caused if e.type == WorkItemCreated.TYPE]) == 1  # v2 beside it
    assert await _count(allocation, referral.person_id) == 2


async def test_malformed_message_is_dead_lettered_and_next_good_one_applied(
    allocation: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    key = f"P-{uuid.uuid4().hex[:8]}"
    await commands.send_raw(Topics.ALLOCATION_COMMANDS, b"{not json " + key.encode(), key=key)
    bad_payload = Envelope(type=ReceiveReferral.TYPE, payload={"person_id": key})  # no name
    await commands.send_raw(
        Topics.ALLOCATION_COMMANDS, bad_payload.model_dump_json().encode(), key=key
    )
    good = await commands.send(ReceiveReferral(person_id=key, person_name="Grace Hopper"), OFFICER)
    await event_log.outcome(good.message_id)

    dead = await event_log.wait_for(
        lambda: [
            r
            for r in event_log.records
            if r.topic == "allocation.commands.dlq" and (r.key or b"").decode() == key
        ]
    )
    reasons = {dict(r.headers)["dlq-reason"].decode() for r in dead}
    originals = {r.value for r in dead}
    assert any("envelope does not parse" in reason for reason in reasons)
    assert any("person_name" in reason for reason in reasons)
    assert b"{not json " + key.encode() in originals
    # The identifiable command also gets an answer naming what was wrong.
    (answer,) = await event_log.outcome(bad_payload.message_id)
    assert CommandRejected.model_validate(answer.payload).rule == "schema"
    assert await _count(allocation, key) == 1


async def test_al02_rule_breaking_command_gets_rejection_naming_the_rule(
    allocation: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    person = f"P-{uuid.uuid4().hex[:8]}"
    sent = await commands.send(
        CreateStep(person_id=person, step_type=StepType.TRUSTED_ASSESSMENT, area="Atlantis"),
        OFFICER,
    )
    (event,) = await event_log.outcome(sent.message_id)
    rejected = CommandRejected.model_validate(event.payload)
    assert event.type == CommandRejected.TYPE
    assert rejected.rule == "AL02"
    assert rejected.command_id == sent.message_id
    assert "Atlantis" in rejected.reason
    assert await _count(allocation, person) == 0


async def test_inbox_forgets_ids_older_than_the_retention_only(allocation: RunningService) -> None:
    runtime = allocation.runtime
    old, recent = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    async with runtime.engine.begin() as conn:
        await conn.execute(
            store.inbox.insert(),
            [
                {"message_id": old, "applied_at": now - timedelta(days=30)},
                {"message_id": recent, "applied_at": now - timedelta(days=1)},
            ],
        )
    assert await runtime.prune_inbox(now) >= 1
    async with runtime.engine.connect() as conn:
        left = set(
            (
                await conn.execute(
                    sa.select(store.inbox.c.message_id).where(
                        store.inbox.c.message_id.in_([old, recent])
                    )
                )
            ).scalars()
        )
    assert left == {recent}
