"""Command assertions (TR02): the edge that accepted a person's request signs, for each command it
publishes, a short-lived JWT bound to that one message: its id, a digest of its exact bytes, its
topic, the user and the position they act in, and the application roles of their sign-in. It
travels in the `actor-assertion` Kafka header.

Only edges hold signing keys (Ed25519, each with a key id); services hold the public key set and
refuse an assertion that does not match the message, was not valid when the broker accepted the
record, lives longer than the maximum lifetime, or names an unknown key. Redelivery of the same
record is a duplicate for the inbox, and the digest binds an assertion to one message, so an
assertion cannot be reused for another one.

Validity is judged at the record's broker timestamp, not at processing time: a command accepted
while a service was down is still applied when it comes back."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from jwt.algorithms import OKPAlgorithm

from contracts import Actor

HEADER = "actor-assertion"
ALGORITHM = "EdDSA"
TYPE = "casework-command+jwt"  # the JWT `typ`: never confused with a sign-in token


class AssertionRefused(Exception):
    """A missing, forged, expired, unbound or reused command assertion."""


def digest(value: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value).digest()).rstrip(b"=").decode()


def _text(value: str) -> str:
    """JSON given inline, or the path of a file that holds it."""
    return value if value.lstrip().startswith("{") else Path(value).read_text()


@dataclass(frozen=True)
class SigningKey:
    """An edge's private Ed25519 key with its key id, kept as a private JWK."""

    kid: str
    private_jwk: dict[str, Any]

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        kid = kid or f"edge-{uuid.uuid4().hex[:12]}"
        jwk = json.loads(OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate()))
        return cls(kid, {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"})

    @classmethod
    def load(cls, value: str) -> SigningKey:
        jwk = json.loads(_text(value))
        if "d" not in jwk or "kid" not in jwk:
            raise ValueError("a signing key is a private JWK with a kid")
        return cls(str(jwk["kid"]), jwk)

    def public_jwk(self) -> dict[str, Any]:
        return {k: v for k, v in self.private_jwk.items() if k != "d"}

    def dumps(self) -> str:
        return json.dumps(self.private_jwk)


def key_set(*keys: SigningKey) -> str:
    """The public JWKS of some signing keys: what services are given to verify with."""
    return json.dumps({"keys": [k.public_jwk() for k in keys]})


@dataclass(frozen=True)
class Asserted:
    """What a verified assertion says about the command it came with."""

    actor: Actor
    roles: frozenset[str]
    edge: str


class AssertionSigner:
    def __init__(self, key: SigningKey, *, edge: str = "edge", ttl_seconds: int = 30) -> None:
        self._key = jwt.PyJWK(key.private_jwk)
        self._kid = key.kid
        self._edge = edge
        self._ttl = ttl_seconds

    def sign(
        self,
        *,
        value: bytes,
        topic: str,
        message_id: uuid.UUID,
        actor: Actor,
        roles: frozenset[str] = frozenset(),
        now: float | None = None,
        ttl_seconds: int | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self._edge,
            "sub": actor.user_id,
            "pos": actor.position_id,
            "roles": sorted(roles),
            "mid": str(message_id),
            "dig": digest(value),
            "top": topic,
            "iat": issued,
            "exp": issued + (self._ttl if ttl_seconds is None else ttl_seconds),
        }
        return jwt.encode(
            claims, self._key.key, algorithm=ALGORITHM, headers={"kid": self._kid, "typ": TYPE}
        )


class AssertionVerifier:
    def __init__(
        self, keys: str, *, max_lifetime_seconds: int = 300, leeway_seconds: int = 5
    ) -> None:
        """`keys`: a public JWKS (JSON, or a path to it). Several keys may be listed while an
        edge rotates its key. Each key is parsed once, here, into its Ed25519 public key
        object; a key of another kind is kept out (an assertion naming it is refused)."""
        parsed = jwt.PyJWKSet.from_dict(json.loads(_text(keys))) if keys else None
        self._keys: dict[str, Ed25519PublicKey] = {
            k.key_id: k.key
            for k in (parsed.keys if parsed else [])
            if k.key_id and isinstance(k.key, Ed25519PublicKey)
        }
        self._max_lifetime = max_lifetime_seconds
        self._leeway = leeway_seconds
        # Actors are immutable and few: one model per user and position, not one per command.
        self._actors: dict[tuple[str, Any], Actor] = {}

    def _actor(self, user_id: str, position_id: Any) -> Actor:
        actor = self._actors.get((user_id, position_id))
        if actor is None:
            actor = Actor(user_id=user_id, position_id=position_id)  # validated as before
            if len(self._actors) >= 4096:
                self._actors.clear()
            self._actors[(user_id, position_id)] = actor
        return actor

    def verify(
        self,
        token: bytes | str | None,
        *,
        value: bytes,
        topic: str,
        message_id: uuid.UUID,
        accepted_at: float,
        now: float | None = None,
    ) -> Asserted:
        """`accepted_at`: the record's broker timestamp, in seconds.

        The compact JWS is split and each part decoded once (PyJWT's `get_unverified_header`
        then `decode` decode the header twice and go through its generic algorithm lookup);
        the Ed25519 signature over the header and payload is checked for every assertion, and
        the claims are checked as `jwt.decode` checks them with these options (required
        claims, `sub` a string, `nbf` if present, no `aud`)."""
        if not token:
            raise AssertionRefused("missing actor assertion")
        raw = token.encode() if isinstance(token, str) else bytes(token)
        try:
            signing_input, _, signature_part = raw.rpartition(b".")
            header_part, dot, payload_part = signing_input.partition(b".")
            if not dot or not signing_input:
                raise ValueError("Not enough segments")
            header = json.loads(_b64(header_part))
            if not isinstance(header, dict):
                raise ValueError("Invalid header string: must be a json object")
        except (ValueError, TypeError, RecursionError) as exc:
            raise AssertionRefused(f"malformed actor assertion: {exc}") from None
        if header.get("typ") != TYPE or header.get("alg") != ALGORITHM:
            raise AssertionRefused("not a command assertion (typ/alg)")
        key = self._keys.get(header.get("kid") or "")
        if key is None:
            raise AssertionRefused(
                f"actor assertion signed with an unknown key {header.get('kid')!r}"
            )
        try:
            key.verify(_b64(signature_part), signing_input)
        except (InvalidSignature, ValueError, TypeError):
            raise AssertionRefused(
                "invalid actor assertion: Signature verification failed"
            ) from None
        claims = _claims(payload_part, time.time() if now is None else now)
        issued, expires = claims["iat"], claims["exp"]
        if expires - issued > self._max_lifetime:
            raise AssertionRefused(
                f"actor assertion lives {expires - issued}s, over the maximum {self._max_lifetime}s"
            )
        wall = time.time() if now is None else now
        if accepted_at > wall + self._leeway:
            raise AssertionRefused("record timestamp is in the future")
        if accepted_at < issued - self._leeway or accepted_at > expires + self._leeway:
            raise AssertionRefused(
                "actor assertion had expired (or was not yet valid) when the broker accepted "
                "the command"
            )
        if claims["mid"] != str(message_id):
            raise AssertionRefused("actor assertion is for another message (message id)")
        if claims["top"] != topic:
            raise AssertionRefused(f"actor assertion is for topic {claims['top']!r}, not {topic!r}")
        if claims["dig"] != digest(value):
            raise AssertionRefused("actor assertion does not match the message body (digest)")
        return Asserted(
            actor=self._actor(str(claims["sub"]), claims.get("pos")),
            roles=frozenset(str(r) for r in claims.get("roles") or []),
            edge=str(claims.get("iss") or ""),
        )


_REQUIRED = ("sub", "mid", "dig", "top", "iat", "exp")


def _b64(part: bytes) -> bytes:
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


def _claims(payload_part: bytes, now: float) -> dict[str, Any]:
    """The claims of a signed assertion, checked as `jwt.decode` would with this module's
    options: a JSON object, every required claim present, `sub` a string, `iat`/`exp` integers,
    `nbf` (if present) passed, no audience (an assertion is never a token for an audience)."""
    try:
        claims = json.loads(_b64(payload_part))
    except (ValueError, TypeError, RecursionError) as exc:
        raise AssertionRefused(f"invalid actor assertion: Invalid payload string: {exc}") from None
    if not isinstance(claims, dict):
        raise AssertionRefused("invalid actor assertion: Invalid payload string: not an object")
    for name in _REQUIRED:
        if claims.get(name) is None:
            raise AssertionRefused(f'invalid actor assertion: Token is missing the "{name}" claim')
    if not isinstance(claims["sub"], str):
        raise AssertionRefused("invalid actor assertion: Subject must be a string")
    if claims.get("aud"):
        raise AssertionRefused("invalid actor assertion: Invalid audience")
    try:
        claims["iat"], claims["exp"] = int(claims["iat"]), int(claims["exp"])
        nbf = int(claims["nbf"]) if "nbf" in claims else None
    except (ValueError, TypeError, OverflowError):
        raise AssertionRefused("invalid actor assertion: iat, exp and nbf are integers") from None
    if nbf is not None and nbf > now:
        raise AssertionRefused("invalid actor assertion: The token is not yet valid (nbf)")
    return claims
