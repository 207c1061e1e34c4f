"""Sign-in (TR01): people sign in with the organisation's OpenID Connect provider; every service
trusts the one issuer named in its settings, finds the issuer's signing keys by key id (`kid`) in
its JWKS, so keys rotate without a restart, and checks issuer, audience and expiry.

A verified sign-in token gives a `Principal`: the user (`sub`) and the application roles the
provider grants (the `roles` claim, as Entra ID app roles and Keycloak client roles give it).
Positions are not in the token: they come from the directory, so a change of position takes
effect without a new sign-in."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from services.shared.roles import AppRole

__all__ = ["AppRole", "Principal", "SignInError", "SignInVerifier", "bearer"]

# Asymmetric algorithms only: a symmetric `alg` would let a public key act as an HMAC secret.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class SignInError(Exception):
    """A sign-in token that is missing, malformed, forged, expired or for someone else."""


@dataclass(frozen=True)
class Principal:
    """Who is asking, from a verified sign-in token."""

    user_id: str
    roles: frozenset[str] = frozenset()
    name: str | None = None
    email: str | None = None
    expires_at: float = 0.0

    def has(self, role: AppRole) -> bool:
        return role.value in self.roles


@dataclass
class _KeySet:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = 0.0


class SignInVerifier:
    """Verifies the issuer's JWTs. Keys are fetched from the issuer's discovery document on
    first use and again when a token names an unknown `kid` (at most once per `refresh_after`
    seconds, so forged kids cannot make us hammer the provider)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_url: str | None = None,
        leeway_seconds: float = 30.0,
        roles_claim: str = "roles",
        refresh_after: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("sign-in needs an issuer and an audience (CASEWORK_OIDC_*)")
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._jwks_url = jwks_url
        self._leeway = leeway_seconds
        self._roles_claim = roles_claim
        self._refresh_after = refresh_after
        self._http = http or httpx.AsyncClient(timeout=5.0)
        self._keys = _KeySet()
        self._lock = asyncio.Lock()

    async def verify(self, token: str | None) -> Principal:
        if not token:
            raise SignInError("no sign-in token: send 'Authorization: Bearer <token>'")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise SignInError(f"malformed sign-in token: {exc}") from None
        kid, alg = header.get("kid"), header.get("alg")
        if alg not in ALGORITHMS:
            raise SignInError(f"sign-in token algorithm {alg!r} is not accepted")
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["sub", "exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise SignInError("sign-in token has expired: sign in again") from None
        except jwt.InvalidAudienceError:
            raise SignInError(f"sign-in token is not for {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise SignInError(f"sign-in token is not from {self.issuer}") from None
        except jwt.PyJWTError as exc:
            raise SignInError(f"invalid sign-in token: {exc}") from None
        roles = claims.get(self._roles_claim) or []
        if isinstance(roles, str):
            roles = roles.split()
        return Principal(
            user_id=str(claims["sub"]),
            roles=frozenset(str(r) for r in roles),
            name=claims.get("name"),
            email=claims.get("email"),
            expires_at=float(claims["exp"]),
        )

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        if kid is None:
            # RFC 7517: without a kid, a key set of one key is unambiguous (some providers,
            # the development one among them, name no kid); with several it is refused.
            if not self._keys.keys:
                async with self._lock:
                    if not self._keys.keys:
                        await self._fetch()
            if len(self._keys.keys) == 1:
                return next(iter(self._keys.keys.values()))
            raise SignInError("sign-in token names no key id (kid) and the issuer has several")
        if kid not in self._keys.keys:
            async with self._lock:
                stale = time.monotonic() - self._keys.fetched_at >= self._refresh_after
                if kid not in self._keys.keys and (stale or not self._keys.keys):
                    await self._fetch()
        try:
            return self._keys.keys[kid]
        except KeyError:
            raise SignInError(f"sign-in token signed with an unknown key {kid!r}") from None

    async def _fetch(self) -> None:
        try:
            url = self._jwks_url
            if url is None:
                discovery = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
                discovery.raise_for_status()
                url = str(discovery.json()["jwks_uri"])
            response = await self._http.get(url)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
            raise SignInError(f"the identity provider's keys cannot be read: {exc}") from None
        self._keys = _KeySet({k.key_id: k for k in keys.keys if k.key_id}, time.monotonic())

    async def aclose(self) -> None:
        await self._http.aclose()


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
