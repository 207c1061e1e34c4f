"""Attacks on the command path (TR01, TR02, TR04), against the real broker, the real PostgreSQL,
the real OpenID Connect provider and the edge. Each attack is refused with its reason and has no
effect: the referral it tried to make is not in allocation's tables."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from pydantic import ValidationError

from casework_testing import edge
from contracts import Actor, CommandRejected, Envelope, Topics
from contracts.access import AccessKind, LoadDirectory, PositionGranted, Role
from contracts.allocation import ReceiveReferral
from deploy.identity import DevSignIn, SignedInUsers
from deploy.stack import DevIdentityProvider
from services.allocation import store
from services.shared.auth import HEADER, SigningKey
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

OFFICER = Actor(user_id="so-hub", position_id="pos-so-hub")


def _referral() -> ReceiveReferral:
    return ReceiveReferral(person_id=f"P-{uuid.uuid4().hex[:8]}", person_name="Mallory")


async def _count(service: RunningService, person_id: str) -> int:
    async with service.runtime.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(store.work_items)
        return int(await conn.scalar(query.where(store.work_items.c.person_id == person_id)) or 0)


async def _refused(
    event_log: EventLog, message_id: uuid.UUID, rule: str = "TR02"
) -> CommandRejected:
    (answer,) = await event_log.outcome(message_id)
    rejected = CommandRejected.model_validate(answer.payload)
    assert answer.type == CommandRejected.TYPE and rejected.rule == rule, rejected
    return rejected


async def _publish(
    commands: CommandClient,
    envelope: Envelope,
    assertion: str | None,
    *,
    topic: str = Topics.ALLOCATION_COMMANDS,
    timestamp_ms: int | None = None,
    value: bytes | None = None,
) -> None:
    headers = [(HEADER, assertion.encode())] if assertion else []
    await commands.send_raw(
        topic,
        value or envelope.model_dump_json().encode(),
        key=str(envelope.payload.get("person_id", "k")),
        headers=headers,
        timestamp_ms=timestamp_ms,
    )


def _sign(key: SigningKey, envelope: Envelope, **overrides: Any) -> str:
    """Signed as the edge signs a command for allocation.commands, but for `overrides`."""
    return edge.assertion(key, envelope, **{"topic": Topics.ALLOCATION_COMMANDS, **overrides})


async def test_tr02_command_without_an_assertion_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    await _publish(commands, envelope, None)
    rejected = await _refused(event_log, envelope.message_id)
    assert "missing actor assertion" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_assertion_forged_with_another_key_under_the_edges_kid_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    forger = SigningKey.generate(kid=edge_key.kid)  # the kid is public; the key is not
    await _publish(commands, envelope, _sign(forger, envelope))
    rejected = await _refused(event_log, envelope.message_id)
    assert "Signature verification failed" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_assertion_signed_with_an_unknown_key_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    await _publish(commands, envelope, _sign(SigningKey.generate(), envelope))
    rejected = await _refused(event_log, envelope.message_id)
    assert "unknown key" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_assertion_expired_when_the_broker_took_the_command_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    stale = _sign(edge_key, envelope, now=time.time() - 600)  # issued 10 min ago, lived 30 s
    await _publish(commands, envelope, stale)
    rejected = await _refused(event_log, envelope.message_id)
    assert "expired" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_ten_year_assertion_is_refused_for_its_lifetime(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    await _publish(commands, envelope, _sign(edge_key, envelope, ttl_seconds=10 * 365 * 86400))
    rejected = await _refused(event_log, envelope.message_id)
    assert "over the maximum" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_assertion_reused_for_another_message_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    """A real assertion, taken from a command the edge published, put on a new message."""
    genuine = Envelope.wrap(_referral(), actor=OFFICER)
    taken = _sign(edge_key, genuine)
    referral = _referral()
    other = Envelope.wrap(referral, actor=OFFICER)
    await _publish(commands, other, taken)
    rejected = await _refused(event_log, other.message_id)
    assert "another message" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_body_changed_under_a_genuine_assertion_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    """Same message id, same assertion, another person in the payload: the digest differs."""
    genuine = Envelope.wrap(_referral(), actor=OFFICER)
    referral = _referral()
    tampered = genuine.model_copy(update={"payload": referral.model_dump(mode="json")})
    await _publish(commands, tampered, _sign(edge_key, genuine))
    rejected = await _refused(event_log, tampered.message_id)
    assert "digest" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_assertion_for_another_topic_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    await _publish(commands, envelope, _sign(edge_key, envelope, topic=Topics.SIGNOFF_COMMANDS))
    rejected = await _refused(event_log, envelope.message_id)
    assert "signoff.commands" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_envelope_actor_other_than_the_asserted_one_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    """The assertion says so-hub signed in; the envelope claims the Management Team's SO."""
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=Actor(user_id="so-mgmt", position_id="pos-so-mgmt"))
    await _publish(commands, envelope, _sign(edge_key, envelope, actor=OFFICER))
    rejected = await _refused(event_log, envelope.message_id)
    assert "differs from the asserted actor" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_sign_in_token_is_not_a_command_assertion(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, users: SignedInUsers
) -> None:
    """A person's (genuine) ID token put straight on the bus, bypassing the edge."""
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    await _publish(commands, envelope, await users.token(OFFICER.user_id))
    rejected = await _refused(event_log, envelope.message_id)
    assert "not a command assertion" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_record_dated_in_the_future_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    """A producer that dates its record ahead to stretch an assertion's window."""
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    ahead = time.time() + 3600
    await _publish(
        commands,
        envelope,
        _sign(edge_key, envelope, now=ahead),
        timestamp_ms=int(ahead * 1000),
    )
    rejected = await _refused(event_log, envelope.message_id)
    assert "future" in rejected.reason
    assert await _count(allocation, referral.person_id) == 0


async def test_tr02_replayed_record_has_no_second_effect(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    """The exact bytes and assertion of an applied command, published again."""
    referral = _referral()
    envelope = Envelope.wrap(referral, actor=OFFICER)
    assertion = _sign(edge_key, envelope)
    await _publish(commands, envelope, assertion)
    await event_log.outcome(envelope.message_id)
    await _publish(commands, envelope, assertion)
    marker = await commands.send(_referral(), OFFICER)  # applied after the replay (same topic)
    await event_log.outcome(marker.message_id)
    # The outcome is a v1 and a v2 `work_item_created`: exactly once is judged per event type.
    types = [e.type for e in event_log.caused_by(envelope.message_id)]
    assert types and len(types) == len(set(types)), types
    assert await _count(allocation, referral.person_id) == 1


# --- The edge's entrance (TR01) ---------------------------------------------------------------


async def _post(edge: httpx.AsyncClient, token: str | None, body: Any, **headers: str) -> Any:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await edge.post(
        f"/commands/{ReceiveReferral.TYPE}", params={"wait": "false"}, json=body, headers=headers
    )


async def test_tr01_edge_refuses_a_command_without_sign_in(edge: httpx.AsyncClient) -> None:
    response = await _post(edge, None, _referral().model_dump(mode="json"))
    assert response.status_code == 401
    assert "no sign-in token" in response.json()["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_tr01_edge_refuses_a_sign_in_token_forged_with_another_key(
    edge: httpx.AsyncClient, identity: DevIdentityProvider
) -> None:
    key = generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": identity.issuer, "aud": "casework", "sub": "so-hub", "iat": now}
    forged = jwt.encode({**claims, "exp": now + 600}, key, algorithm="RS256")
    response = await _post(edge, forged, _referral().model_dump(mode="json"))
    assert response.status_code == 401
    assert "invalid sign-in token" in response.json()["error"]


async def test_tr01_edge_refuses_an_unsigned_sign_in_token(
    edge: httpx.AsyncClient, identity: DevIdentityProvider
) -> None:
    now = int(time.time())
    claims = {"iss": identity.issuer, "aud": "casework", "sub": "so-hub", "iat": now}
    unsigned = jwt.encode({**claims, "exp": now + 600}, "", algorithm="none")
    response = await _post(edge, unsigned, _referral().model_dump(mode="json"))
    assert response.status_code == 401
    assert "algorithm 'none' is not accepted" in response.json()["error"]


async def test_tr01_edge_refuses_a_token_issued_for_another_client(
    edge: httpx.AsyncClient, identity: DevIdentityProvider
) -> None:
    """A genuine token of the same provider, but for another application (audience)."""
    other_app = DevSignIn(identity.issuer, client_id="payroll")
    try:
        tokens = await other_app.sign_in("so-hub")
    finally:
        await other_app.aclose()
    response = await _post(edge, tokens.id_token, _referral().model_dump(mode="json"))
    assert response.status_code == 401
    assert "not for 'casework'" in response.json()["error"]


async def test_tr08_edge_refuses_an_oversized_command(
    edge: httpx.AsyncClient, users: SignedInUsers
) -> None:
    body = {"person_id": "P-big", "person_name": "x" * 300_000}
    response = await _post(edge, await users.token("so-hub"), body)
    assert response.status_code == 413
    assert response.json()["rule"] == "TR08"


async def test_tr05_edge_refuses_a_form_post(edge: httpx.AsyncClient, users: SignedInUsers) -> None:
    """What a cross-site form can send: no JSON body."""
    response = await edge.post(
        f"/commands/{ReceiveReferral.TYPE}",
        content=b"person_id=P-x&person_name=y",
        headers={
            "Authorization": f"Bearer {await users.token('so-hub')}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 415


# --- The bus (TR04) ---------------------------------------------------------------------------


def _position(user_id: str) -> PositionGranted:
    return PositionGranted(
        user_id=user_id,
        position_id=f"pos-{user_id}",
        unit_id="Wellbeing Management Team",
        role=Role.SENIOR_OFFICER,
        kind=AccessKind.PRIMARY,
    )


async def _projected(service: RunningService, position_id: str) -> bool:
    positions = store.directory_t.positions
    async with service.runtime.engine.connect() as conn:
        query = sa.select(positions.c.position_id).where(positions.c.position_id == position_id)
        return (await conn.scalar(query)) is not None


async def _dead_letter_reason(event_log: EventLog, topic: str, message_id: uuid.UUID) -> str:
    def same(value: bytes) -> bool:
        try:
            return Envelope.model_validate_json(value).message_id == message_id
        except ValidationError:  # other tests dead-letter bytes that are no envelope at all
            return False

    def find() -> list[Any]:
        return [
            r for r in event_log.records if r.topic == Topics.dead_letter(topic) and same(r.value)
        ]

    # Every service that reads the topic dead-letters its own copy: all give the same reason.
    reasons = {str(dict(r.headers)["dlq-reason"].decode()) for r in await event_log.wait_for(find)}
    (reason,) = reasons
    return reason


@pytest.mark.parametrize("topic", [Topics.ALLOCATION_COMMANDS])
async def test_tr04_event_on_a_command_topic_is_dead_lettered_and_not_projected(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, topic: str
) -> None:
    """A token-less position_granted published on allocation.commands, to make an unknown user
    a Senior Officer."""
    intruder = f"intruder-{uuid.uuid4().hex[:6]}"
    envelope = Envelope.wrap(_position(intruder))
    await commands.send_raw(topic, envelope.model_dump_json().encode(), key=intruder)
    reason = await _dead_letter_reason(event_log, topic, envelope.message_id)
    assert reason.startswith("TR04") and "commands only" in reason
    marker = await commands.send(_referral(), OFFICER)  # allocation went on, past the record
    await event_log.outcome(marker.message_id)
    assert not await _projected(allocation, f"pos-{intruder}")


async def test_tr04_directory_event_from_anothers_event_topic_is_dead_lettered(
    allocation: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    """A position_granted published on signoff.events (which allocation reads): only
    access.events may carry access's events."""
    intruder = f"intruder-{uuid.uuid4().hex[:6]}"
    envelope = Envelope.wrap(_position(intruder))
    await commands.send_raw(
        Topics.SIGNOFF_EVENTS, envelope.model_dump_json().encode(), key=intruder
    )
    reason = await _dead_letter_reason(event_log, Topics.SIGNOFF_EVENTS, envelope.message_id)
    assert "accepted only from access.events" in reason
    assert not await _projected(allocation, f"pos-{intruder}")


async def test_tr04_command_of_another_service_on_a_command_topic_is_refused(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, edge_key: SigningKey
) -> None:
    """access.load_directory, validly asserted, but published on allocation.commands."""
    admin = Actor(user_id="directory-admin")
    envelope = Envelope.wrap(LoadDirectory(directory_id="smuggled"), actor=admin)
    assertion = _sign(edge_key, envelope, actor=admin)
    await _publish(commands, envelope, assertion)
    rejected = await _refused(event_log, envelope.message_id, rule="TR04")
    assert "accepted only from access.commands" in rejected.reason
