"""The edge (TR01, TR02): where a person's command enters the platform.

`POST /commands/{type}` with the caller's sign-in token (`Authorization: Bearer`), the position
they act in (`X-Acting-Position`, optional) and the command's fields as a JSON body. The edge
verifies the sign-in, validates the command against its contract, wraps it in an envelope, signs
an assertion bound to that one message (its id, the digest of its bytes, its topic, the user,
the position and the roles of the sign-in) and publishes it on the owning service's command
topic. It then answers with the outcome: the events the command caused (200), the rejection
naming the rule (422), or the dead letter's reason (400). `?wait=false` answers 202 at once.

An `Idempotency-Key` header makes a retried request the same message, which the service's inbox
applies once. The edge holds the only signing key of the platform; it reads no database."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts import Actor, Command, CommandRejected, Envelope, registered_types
from services.edge.openapi import openapi_document
from services.shared import auth, guard, kafka_auth, logs
from services.shared.metrics import HttpMetrics
from services.shared.outcomes import OutcomeWatcher
from services.shared.runtime import signin_verifier
from services.shared.settings import Settings

log = logs.get(__name__)

POSITION_HEADER = "x-acting-position"
IDEMPOTENCY_HEADER = "idempotency-key"
MAX_COMMAND_BYTES = 256 * 1024  # well under the broker's message limit, with headers
_IDEMPOTENCY_NS = uuid.UUID("6f0c3a52-3c1e-4d55-9a8e-5b7d1f0e2c11")

ANSWERED = Counter("casework_edge_commands_total", "Commands taken by the edge", ["status"])


def idempotent_message_id(user_id: str, command_type: str, key: str) -> uuid.UUID:
    """One message id per user, command type and idempotency key: a retry is a duplicate."""
    return uuid.uuid5(_IDEMPOTENCY_NS, f"{user_id}\n{command_type}\n{key}")


def command_types() -> dict[str, type[Command]]:
    """Every command of the contracts, by type, in order of type."""
    return {n: m for n, m in sorted(registered_types().items()) if issubclass(m, Command)}


def command_topic(model: type[Command]) -> str:
    return f"{model.TYPE.split('.', 1)[0]}.commands"


class Edge:
    def __init__(self, settings: Settings) -> None:
        if not settings.assertion_signing_key:
            raise ValueError("the edge needs CASEWORK_ASSERTION_SIGNING_KEY (a private JWK)")
        self.settings = settings
        self.signing_key = auth.SigningKey.load(settings.assertion_signing_key)
        self.signer = auth.AssertionSigner(
            self.signing_key,
            edge=settings.service_name,
            ttl_seconds=settings.assertion_ttl_seconds,
        )
        self.signin = signin_verifier(settings)
        self.broker: dict[str, Any] = {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            **kafka_auth.kafka_client_kwargs(settings),  # TR04: the edge as itself
        }
        self.outcomes = OutcomeWatcher(self.broker)
        self.types = command_types()

    async def start(self) -> None:
        # aiokafka clients belong to the running loop: made here, not in __init__
        self.producer = AIOKafkaProducer(acks="all", linger_ms=1, **self.broker)
        await self.producer.start()
        await self.outcomes.start()
        log.info("edge started", commands=len(self.types))

    async def stop(self) -> None:
        await self.outcomes.stop()
        await self.producer.stop()

    async def submit(self, request: Request) -> Response:
        principal = await guard.signed_in(request)
        name = request.path_params["command_type"]
        model = self.types.get(name)
        if model is None:
            return _answer(404, {"error": f"unknown command {name!r}", "rule": "schema"})
        body = await guard.json_body(request, MAX_COMMAND_BYTES)
        try:
            command = model.model_validate(body)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(map(str, e["loc"])) or "(command)", "problem": e["msg"]}
                for e in exc.errors()
            ]
            return _answer(
                400, {"error": f"invalid {name}", "rule": "schema", "problems": problems}
            )
        actor = Actor(user_id=principal.user_id, position_id=request.headers.get(POSITION_HEADER))
        envelope = Envelope.wrap(command, actor=actor)
        if key := request.headers.get(IDEMPOTENCY_HEADER):
            message_id = idempotent_message_id(principal.user_id, name, key)
            envelope = envelope.model_copy(update={"message_id": message_id})
        if corr := request.query_params.get("correlation_id"):
            with contextlib.suppress(ValueError):
                envelope = envelope.model_copy(update={"correlation_id": uuid.UUID(corr)})
        value = envelope.model_dump_json().encode()
        topic = command_topic(model)
        assertion = self.signer.sign(
            value=value,
            topic=topic,
            message_id=envelope.message_id,
            actor=actor,
            roles=principal.roles,
        )
        wait = request.query_params.get("wait", "true").lower() != "false"
        if wait:
            self.outcomes.expect(envelope.message_id)
        key_bytes = command.key()
        await self.producer.send_and_wait(
            topic,
            value,
            key=key_bytes.encode() if key_bytes else None,
            headers=[(auth.HEADER, assertion.encode())],
            timestamp_ms=int(time.time() * 1000),
        )
        sent = envelope.model_dump(mode="json")
        if not wait:
            return _answer(202, {"command": sent})
        timeout = _timeout(request.query_params.get("timeout"))
        outcome = await self.outcomes.outcome(envelope.message_id, timeout)
        if outcome is None:
            return _answer(504, {"command": sent, "error": f"no outcome within {timeout:.0f}s"})
        if outcome.dead_letter_reason is not None:
            return _answer(
                400, {"command": sent, "error": outcome.dead_letter_reason, "rule": "schema"}
            )
        events = [e.model_dump(mode="json") for e in outcome.events]
        rejected = next((e for e in outcome.events if e.type == CommandRejected.TYPE), None)
        if rejected is not None:
            refusal = CommandRejected.model_validate(rejected.payload)
            return _answer(
                422,
                {
                    "command": sent,
                    "outcome": events,
                    "rejected": refusal.model_dump(mode="json"),
                },
            )
        return _answer(200, {"command": sent, "outcome": events})

    def asgi(self, *, manage_lifecycle: bool = True) -> Starlette:
        async def commands(_: Request) -> Response:
            return JSONResponse(sorted(self.types))

        async def openapi(_: Request) -> Response:
            return JSONResponse(openapi_document(self.types))

        async def jwks(_: Request) -> Response:
            return Response(auth.key_set(self.signing_key), media_type="application/json")

        async def healthz(_: Request) -> Response:
            return JSONResponse({"status": "up", "service": self.settings.service_name})

        async def readyz(_: Request) -> Response:
            ready = False
            with contextlib.suppress(Exception):
                await self.producer.client.fetch_all_metadata()
                ready = True
            return JSONResponse(
                {"ready": ready, "broker": ready}, status_code=200 if ready else 503
            )

        async def metrics(_: Request) -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            if manage_lifecycle:
                await self.start()
            try:
                yield
            finally:
                if manage_lifecycle:
                    await self.stop()

        app = Starlette(
            routes=[
                Route("/commands", commands),
                Route("/commands/{command_type}", self.submit, methods=["POST"]),
                Route("/openapi.json", openapi),
                Route("/.well-known/jwks.json", jwks),
                Route("/healthz", healthz),
                Route("/readyz", readyz),
                Route("/metrics", metrics),
            ],
            middleware=[Middleware(HttpMetrics, service=self.settings.service_name)],
            lifespan=lifespan,
            exception_handlers={guard.HttpRefusal: guard.http_refusal},
        )
        app.state.signin = self.signin
        return app


def _answer(status: int, body: dict[str, Any]) -> JSONResponse:
    ANSWERED.labels(str(status)).inc()
    return JSONResponse(body, status_code=status)


def _timeout(value: str | None) -> float:
    try:
        return max(0.1, min(float(value), 120.0)) if value else 30.0
    except ValueError:
        return 30.0
