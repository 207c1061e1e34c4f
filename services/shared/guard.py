"""The HTTP entrance of every service (TR05): each read needs a valid sign-in token, and the user
comes from the token, never from the path. Writes need the token in a header and a JSON body, so a
cross-site form (which can send neither) cannot make one.

Handlers call `await signed_in(request)`; a refusal is an `HttpRefusal`, which the runtime turns
into a JSON answer that says why (401 with `WWW-Authenticate`, 403, 413 or 415)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from services.shared.identity import AppRole, Principal, SignInError, SignInVerifier, bearer

MAX_JSON_BODY = 64 * 1024


class HttpRefusal(Exception):
    def __init__(self, status: int, reason: str, rule: str = "TR05") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.rule = rule

    def response(self) -> JSONResponse:
        headers = {}
        if self.status == 401:
            text = self.reason.replace('"', "'")
            headers["WWW-Authenticate"] = (
                f'Bearer error="invalid_token", error_description="{text}"'
            )
        return JSONResponse(
            {"error": self.reason, "rule": self.rule}, status_code=self.status, headers=headers
        )


async def http_refusal(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HttpRefusal)
    return exc.response()


async def signed_in(request: Request) -> Principal:
    verifier: SignInVerifier | None = getattr(request.app.state, "signin", None)
    if verifier is None:
        raise HttpRefusal(503, "sign-in is not configured (CASEWORK_OIDC_ISSUER)")
    try:
        return await verifier.verify(bearer(request.headers.get("authorization")))
    except SignInError as exc:
        raise HttpRefusal(401, str(exc)) from None


async def with_role(request: Request, role: AppRole, rule: str = "TR05") -> Principal:
    """A signed-in user who holds an application role."""
    principal = await signed_in(request)
    if not principal.has(role):
        raise HttpRefusal(403, f"this needs the {role.value} role", rule)
    return principal


async def json_body(request: Request, max_bytes: int = MAX_JSON_BODY) -> Any:
    """A write's body: JSON only (415 otherwise), at most `max_bytes` (413)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HttpRefusal(415, "a write needs a JSON body (Content-Type: application/json)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HttpRefusal(413, f"body over {max_bytes} bytes", "TR08")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HttpRefusal(413, f"body over {max_bytes} bytes", "TR08")
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise HttpRefusal(400, f"body is not valid JSON: {exc}", "schema") from None
