"""The identity provider's browser flow for the web (TR01): authorization code with PKCE, the
state and nonce checked on return, the ID token verified by the platform's own verifier; the
tokens stay on the server, in the person's session (`sessions.py`)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from services.shared.identity import Principal, SignInVerifier

SCOPES = "openid profile email"


class SignInFailed(Exception):
    pass


@dataclass(frozen=True)
class Started:
    """A sign-in on its way: what the return must match (state, nonce) and prove (verifier)."""

    state: str
    nonce: str
    verifier: str
    after: str  # the page to open once signed in (a path of this service)
    started_at: float


@dataclass(frozen=True)
class Tokens:
    principal: Principal
    id_token: str
    refresh_token: str | None
    expires_at: float


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class BrowserSignIn:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        verifier: SignInVerifier,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.verifier = verifier
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._config: dict[str, Any] | None = None

    async def config(self) -> dict[str, Any]:
        if self._config is None:
            answer = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
            answer.raise_for_status()
            self._config = answer.json()
        return self._config

    async def start(self, after: str) -> tuple[Started, str]:
        """A new sign-in and the provider's address to send the browser to."""
        started = Started(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
            after,
            time.time(),
        )
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": SCOPES,
            "state": started.state,
            "nonce": started.nonce,
            "code_challenge": _challenge(started.verifier),
            "code_challenge_method": "S256",
        }
        endpoint = (await self.config())["authorization_endpoint"]
        return started, f"{endpoint}?{urllib.parse.urlencode(query)}"

    async def finish(self, started: Started, code: str) -> Tokens:
        """The code exchanged for tokens (PKCE), the ID token verified and its nonce matched."""
        tokens = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": started.verifier,
            }
        )
        claims = jwt.decode(tokens.id_token, options={"verify_signature": False})
        if claims.get("nonce") != started.nonce:  # verified above; this binds it to the start
            raise SignInFailed("the sign-in answer was not for this sign-in")
        return tokens

    async def refresh(self, tokens: Tokens) -> Tokens:
        if not tokens.refresh_token:
            raise SignInFailed("no refresh token")
        return await self._token(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )

    async def _token(self, form: dict[str, str]) -> Tokens:
        config = await self.config()
        answer = await self._http.post(
            config["token_endpoint"], data=form, auth=(self.client_id, self.client_secret)
        )
        if answer.status_code != 200:
            raise SignInFailed(f"the provider answered {answer.status_code}")
        body = answer.json()
        if "id_token" not in body:
            raise SignInFailed("the provider gave no ID token")
        principal = await self.verifier.verify(body["id_token"])
        return Tokens(
            principal,
            body["id_token"],
            body.get("refresh_token"),
            time.time() + float(body.get("expires_in", 3600)),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
