"""Sign-in for people (TR01): the development OpenID Connect provider of the embedded stack, and
the authorization-code flow that the CLI, the walkthrough and the tests use to sign in.

The embedded stack runs `oidc-provider-mock` (`deploy.stack.DevIdentityProvider`: a real OpenID
Connect provider with discovery, RS256 keys by `kid` at its JWKS, authorization code and refresh
tokens). Its sign-in page lets a developer choose who they are; `DevSignIn` answers that page as
the chosen user. Against a production provider (Entra ID, Keycloak) the CLI opens the provider's
own page in a browser and takes the code on a loopback redirect (`browser_sign_in`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

CLIENT_ID = "casework"  # the audience of sign-in tokens (CASEWORK_OIDC_AUDIENCE)
SCOPES = "openid profile email"
LOOPBACK_REDIRECT = "http://127.0.0.1/signed-in"


class SignInFailed(Exception):
    pass


@dataclass(frozen=True)
class Tokens:
    """What a sign-in gives: the ID token (the bearer for the platform's APIs) and a refresh
    token to get a new one without signing in again."""

    user_id: str
    id_token: str
    refresh_token: str | None
    expires_at: float

    def fresh(self, margin: float = 30.0) -> bool:
        return self.expires_at - margin > time.time()

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "id_token": self.id_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tokens:
        return cls(
            str(data["user_id"]),
            str(data["id_token"]),
            data.get("refresh_token"),
            float(data["expires_at"]),
        )


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class DevSignIn:
    """Signs people in through the development provider's authorization-code flow, over HTTP,
    answering its "who are you" page as the chosen user. `set_claims` gives a user claims (such
    as application roles) on that provider, as an administrator would in a real one."""

    def __init__(
        self, issuer: str, client_id: str = CLIENT_ID, client_secret: str = "development"
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        # The development provider takes any secret from an unregistered client.
        self.client_secret = client_secret
        self._http = httpx.AsyncClient(timeout=10.0)
        self._config: dict[str, Any] | None = None

    async def config(self) -> dict[str, Any]:
        if self._config is None:
            response = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            self._config = response.json()
        return self._config

    async def set_claims(self, user_id: str, claims: dict[str, Any]) -> None:
        response = await self._http.put(f"{self.issuer}/users/{user_id}", json=claims)
        response.raise_for_status()

    async def sign_in(self, user_id: str) -> Tokens:
        config = await self.config()
        state, (verifier, challenge) = secrets.token_urlsafe(16), _pkce()
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": SCOPES,
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        answer = await self._http.post(
            config["authorization_endpoint"], params=query, data={"sub": user_id}
        )
        location = answer.headers.get("location", "")
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        if answer.status_code not in (302, 303) or params.get("state") != state:
            raise SignInFailed(f"the provider did not sign {user_id!r} in: {answer.status_code}")
        return await self._token(
            {
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": LOOPBACK_REDIRECT,
                "code_verifier": verifier,
            },
            user_id,
        )

    async def refresh(self, tokens: Tokens) -> Tokens:
        if not tokens.refresh_token:
            raise SignInFailed("no refresh token: sign in again")
        return await self._token(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
            tokens.user_id,
        )

    async def _token(self, form: dict[str, str], user_id: str) -> Tokens:
        config = await self.config()
        response = await self._http.post(
            config["token_endpoint"], data=form, auth=(self.client_id, self.client_secret)
        )
        if response.status_code != 200:
            raise SignInFailed(f"token endpoint answered {response.status_code}: {response.text}")
        body = response.json()
        if "id_token" not in body:
            raise SignInFailed("the provider gave no ID token: sign in again")
        return Tokens(
            user_id=user_id,
            id_token=body["id_token"],
            refresh_token=body.get("refresh_token"),
            expires_at=time.time() + float(body.get("expires_in", 3600)),
        )

    async def aclose(self) -> None:
        await self._http.aclose()


class SignedInUsers:
    """Each user's tokens, signed in once and refreshed when they run out."""

    def __init__(self, signin: DevSignIn) -> None:
        self.signin = signin
        self._tokens: dict[str, Tokens] = {}
        self._lock = asyncio.Lock()

    async def token(self, user_id: str) -> str:
        tokens = self._tokens.get(user_id)
        if tokens is None or not tokens.fresh():
            async with self._lock:
                tokens = self._tokens.get(user_id)
                if tokens is None or not tokens.fresh():
                    tokens = await self.signin.sign_in(user_id)
                    self._tokens[user_id] = tokens
        return tokens.id_token

    async def headers(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(user_id)}"}

    def forget(self, user_id: str) -> None:
        with contextlib.suppress(KeyError):
            del self._tokens[user_id]
