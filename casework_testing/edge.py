"""Signing commands as the edge signs them (TR02), for tests that publish straight to a command
topic: setups that skip the edge's HTTP round trip, and attacks on the assertion itself (another
key, an expired or a mismatched assertion)."""

from __future__ import annotations

from typing import Any

from contracts import Envelope
from services.shared.auth import HEADER, AssertionSigner, SigningKey


def assertion(
    key: SigningKey, envelope: Envelope, topic: str, *, value: bytes | None = None, **claims: Any
) -> str:
    """The assertion the edge would put on `envelope` published to `topic`: bound to its message
    id, its actor and `value` (the record's bytes; the envelope's JSON unless given). `claims`
    overrides what `AssertionSigner.sign` takes (`now`, `ttl_seconds`, `roles`, `topic`...)."""
    if envelope.actor is None:
        raise ValueError("a command is signed for its actor: the envelope has none")
    signed: dict[str, Any] = {
        "value": envelope.model_dump_json().encode() if value is None else value,
        "topic": topic,
        "message_id": envelope.message_id,
        "actor": envelope.actor,
    }
    signed.update(claims)
    return AssertionSigner(key).sign(**signed)


def signed_record(
    key: SigningKey, envelope: Envelope, topic: str, *, value: bytes | None = None, **claims: Any
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The record's value and headers as the edge publishes `envelope` to `topic`."""
    value = envelope.model_dump_json().encode() if value is None else value
    signature = assertion(key, envelope, topic, value=value, **claims)
    return value, [(HEADER, signature.encode())]
