"""Signed actor tokens (EdDSA JWTs) carried in the `actor-token` Kafka header.

The issuer (CLI, tests, a front end) signs `{sub: user_id, pos: position_id, exp}` with the
private key; services hold only the public key, so no service can forge an actor."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts import Actor

HEADER = "actor-token"
ALGORITHM = "EdDSA"


class ActorTokenError(Exception):
    """A missing, expired, malformed or forged actor token."""


def _pem(value: str) -> str:
    if value.strip().startswith("-----BEGIN"):
        return value
    return Path(value).read_text()


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str

    @classmethod
    def generate(cls) -> KeyPair:
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return cls(private, public)

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        private_path, public_path = directory / "actor.key", directory / "actor.pub"
        private_path.write_text(self.private_pem)
        private_path.chmod(0o600)
        public_path.write_text(self.public_pem)
        return private_path, public_path


class TokenIssuer:
    def __init__(self, private_key: str, ttl_seconds: int = 3600) -> None:
        self._key = _pem(private_key)
        self._ttl = ttl_seconds

    def issue(self, actor: Actor, ttl_seconds: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": actor.user_id,
            "pos": actor.position_id,
            "iat": now,
            "exp": now + (self._ttl if ttl_seconds is None else ttl_seconds),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)


class TokenVerifier:
    """Verifies tokens. A token's signature is checked once and remembered (clients reuse a
    token for many commands); its expiry is checked on every use."""

    def __init__(self, public_key: str) -> None:
        self._key = _pem(public_key)
        self._verify_signature = lru_cache(maxsize=4096)(self._decode)

    def _decode(self, token: str) -> tuple[Actor, int]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise ActorTokenError(f"invalid actor token: {exc}") from exc
        return Actor(user_id=claims["sub"], position_id=claims.get("pos")), int(claims["exp"])

    def verify(self, token: str | bytes | None) -> Actor:
        if not token:
            raise ActorTokenError("missing actor token")
        text = token.decode() if isinstance(token, bytes) else token
        actor, expires = self._verify_signature(text)
        if expires <= time.time():
            raise ActorTokenError("expired actor token")
        return actor
