"""Fixtures for the notifications tests: the service in-process (restartable), a real SMTP server
(aiosmtpd) and a real webhook receiver (Starlette under uvicorn) that verifies signatures, both
on loopback ports, and helpers that publish other services' events onto their topics as
envelopes and read the service's API as signed-in users (TR05).

The attack tests (`tests/security/test_notifications_attacks.py`) use these fixtures too. A
fixture named in two places is two fixtures to pytest, so `smtp`, `webhook` and `notifier` hand
every place the same session-wide instance (`_Shared`): one notifications service per session,
whatever runs."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from contracts import Actor, Envelope, Event, Topics
from contracts.access import (
    AccessKind,
    PositionGranted,
    Role,
    UnitDefined,
    UnitKind,
    UserRegistered,
)
from contracts.notifications import (
    NotificationSent,
    RegisterWebhook,
    RemoveWebhook,
    WebhookRegistered,
)
from deploy.identity import SignedInUsers
from deploy.stack import free_port
from services.notifications import store
from services.notifications.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from services.notifications.service import build_spec
from services.notifications.settings import DeliverySettings, SmtpSettings
from services.shared.settings import Settings
from tests.conftest import RunningService, start_service
from tests.support.client import CommandClient, EventLog

E = TypeVar("E", bound=Event)


# --- SMTP ------------------------------------------------------------------------------------


class SmtpSink:
    """aiosmtpd handler: keeps every message it accepted (it runs in the controller's thread)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in list(self.messages) if m["To"] == address]


class _Shared:
    """One instance per test session of a resource whose fixture is defined in more than one
    place: the first fixture that asks starts it, the others get the same one, the last to
    finish stops it."""

    def __init__(self) -> None:
        self.value: Any = None
        self.holders = 0
        self._stack = contextlib.AsyncExitStack()

    @contextlib.asynccontextmanager
    async def hold(
        self, start: Callable[[contextlib.AsyncExitStack], Awaitable[Any]]
    ) -> AsyncIterator[Any]:
        if self.holders == 0:
            self._stack = contextlib.AsyncExitStack()
            self.value = await start(self._stack)
        self.holders += 1
        try:
            yield self.value
        finally:
            self.holders -= 1
            if self.holders == 0:
                await self._stack.aclose()
                self.value = None


_SMTP, _WEBHOOK, _NOTIFIER = _Shared(), _Shared(), _Shared()


@pytest.fixture(scope="session")
async def smtp() -> AsyncIterator[tuple[SmtpSink, int]]:
    async def start(stack: contextlib.AsyncExitStack) -> tuple[SmtpSink, int]:
        sink = SmtpSink()
        port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        stack.callback(controller.stop)
        return sink, port

    async with _SMTP.hold(start) as found:
        yield found


# --- webhooks --------------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """Records every POST to /hook/{name} whose signature verifies (`received`), with the secret
    registered for that name (`secrets`); a request that does not verify answers 401 and is kept
    in `refused`. Every request that arrives, on any path, is in `arrivals`. A name in `down`
    answers 503 (a receiver that is down); `gate`, when set, holds each request until it is
    opened. /redirect/{name} answers 307 to /hook/{name}."""

    port: int
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    arrivals: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    gate: asyncio.Event | None = None
    in_flight: int = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.origin}/hook/{name}"

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.arrivals.append(name)
        body = await request.body()
        if name in self.down:
            return Response(status_code=503)
        try:
            verify_signature(
                self.secrets.get(name, ""),
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                body,
                now=time.time(),
            )
        except ValueError as exc:
            self.refused.append((name, str(exc)))
            return Response(status_code=401)
        if self.gate is not None:
            self.in_flight += 1
            await self.gate.wait()
            self.in_flight -= 1
        self.received.append((name, {k.lower(): v for k, v in request.headers.items()}, body))
        return Response(status_code=204)

    async def redirect(self, request: Request) -> Response:
        self.arrivals.append(f"redirect:{request.path_params['name']}")
        return RedirectResponse(self.url(request.path_params["name"]), status_code=307)

    def keys(self, name: str) -> list[str]:
        return [h["idempotency-key"] for n, h, _ in self.received if n == name]

    def bodies(self, name: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for n, h, b in self.received if n == name]


@pytest.fixture(scope="session")
async def webhook() -> AsyncIterator[WebhookReceiver]:
    async def start(stack: contextlib.AsyncExitStack) -> WebhookReceiver:
        receiver = WebhookReceiver(port=free_port())
        app = Starlette(
            routes=[
                Route("/hook/{name}", receiver.endpoint, methods=["POST"]),
                Route("/redirect/{name}", receiver.redirect, methods=["POST"]),
            ]
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=receiver.port, log_level="warning")
        )
        task = asyncio.create_task(server.serve())

        async def stop() -> None:
            server.should_exit = True
            await task

        stack.push_async_callback(stop)

        async def started() -> bool:
            return server.started

        await wait_until(started)
        return receiver

    async with _WEBHOOK.hold(start) as receiver:
        yield receiver


def webhook_settings(receiver: WebhookReceiver) -> dict[str, object]:
    """TR06 in the tests: the receiver's origin is an allowed target, and its loopback address
    is explicitly allowed."""
    return {
        "webhook_allowed_targets": [f"{receiver.origin}/"],
        "webhook_allowed_addresses": ["127.0.0.1/32"],
    }


# --- the service -----------------------------------------------------------------------------


class Notifier:
    """The notifications service in-process; `restart` stops it and starts a new instance."""

    def __init__(self, make: Callable[..., Awaitable[RunningService]]) -> None:
        self._make = make
        self.service: RunningService | None = None

    async def start(self, **overrides: object) -> RunningService:
        self.service = await self._make(**overrides)
        return self.service

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.http.aclose()
            await self.service.runtime.stop()
            self.service = None

    async def restart(self, **overrides: object) -> RunningService:
        await self.stop()
        return await self.start(**overrides)

    @property
    def running(self) -> RunningService:
        assert self.service is not None
        return self.service


DELIVERY = DeliverySettings(
    poll_seconds=0.05,
    batch_size=50,
    max_attempts=8,
    backoff_base_seconds=0.05,
    backoff_max_seconds=0.2,
    webhook_timeout_seconds=5,
    reminder_poll_seconds=3600,
)


@pytest.fixture(scope="session")
async def notifier(
    settings_for: Callable[..., Settings],
    smtp: tuple[SmtpSink, int],
    webhook: WebhookReceiver,
    users: SignedInUsers,
) -> AsyncIterator[Notifier]:
    """The service, reading its webhook policy from the same settings it runs with;
    `restart(**overrides)` changes any of them (`webhook_allowed_targets=[...]`)."""

    async def make(**overrides: object) -> RunningService:
        settings = settings_for("notifications", **{**webhook_settings(webhook), **overrides})
        spec = build_spec(SmtpSettings(host="127.0.0.1", port=smtp[1]), DELIVERY, settings)
        return await start_service(spec, settings, users)

    async def start(stack: contextlib.AsyncExitStack) -> Notifier:
        holder = Notifier(make)
        await holder.start()
        stack.push_async_callback(holder.stop)
        return holder

    async with _NOTIFIER.hold(start) as holder:
        yield holder


@pytest.fixture
async def notifications(notifier: Notifier) -> RunningService:
    if notifier.service is None:
        await notifier.start()
    return notifier.running


# --- publishing other services' events -------------------------------------------------------


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def publish(
    commands: CommandClient,
    topic: str,
    event: Event,
    *,
    occurred_at: datetime | None = None,
    envelope: Envelope | None = None,
) -> Envelope:
    envelope = envelope or Envelope.wrap(event, occurred_at=occurred_at)
    await commands.send_raw(topic, envelope.model_dump_json().encode(), key=event.key())
    return envelope


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Waits for an outcome in the database (there is no event for a projection update)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


@dataclass
class Person:
    user_id: str
    position_id: str
    email: str | None


@dataclass
class Org:
    """A small directory: a team in a segment, its people, published on access.events."""

    commands: CommandClient
    service: RunningService
    unit_id: str = field(default_factory=lambda: uid("unit"))
    segment_id: str = field(default_factory=lambda: uid("segment"))
    people: dict[str, Person] = field(default_factory=dict)

    async def define(self, name: str | None = None) -> None:
        await publish(
            self.commands,
            Topics.ACCESS_EVENTS,
            UnitDefined(
                unit_id=self.segment_id, name=f"{self.segment_id} segment", kind=UnitKind.SEGMENT
            ),
        )
        await publish(
            self.commands,
            Topics.ACCESS_EVENTS,
            UnitDefined(
                unit_id=self.unit_id,
                name=name or f"{self.unit_id} team",
                kind=UnitKind.TEAM,
                parent_id=self.segment_id,
            ),
        )

    async def person(
        self,
        label: str,
        role: Role,
        *,
        unit_id: str | None = None,
        email: bool = True,
        line_manager: str | None = None,
    ) -> Person:
        user_id = uid(label)
        person = Person(user_id, f"pos-{user_id}", f"{user_id}@example.org" if email else None)
        await publish(
            self.commands,
            Topics.ACCESS_EVENTS,
            UserRegistered(
                user_id=user_id,
                name=label,
                email=person.email,
                line_manager_id=self.people[line_manager].user_id if line_manager else None,
            ),
        )
        await publish(
            self.commands,
            Topics.ACCESS_EVENTS,
            PositionGranted(
                user_id=user_id,
                position_id=person.position_id,
                unit_id=unit_id or self.unit_id,
                role=role,
                kind=AccessKind.PRIMARY,
            ),
        )
        self.people[label] = person
        return person

    async def known(self) -> None:
        """Waits until the service has projected every person defined so far."""
        positions = [p.position_id for p in self.people.values()]
        t = store.directory_t.positions

        async def check() -> bool:
            async with self.service.runtime.engine.connect() as conn:
                n = await conn.scalar(
                    sa.select(sa.func.count()).where(t.c.position_id.in_(positions))
                )
            return n == len(positions)

        await wait_until(check)


@pytest.fixture
def org(commands: CommandClient, notifications: RunningService) -> Org:
    return Org(commands, notifications)


def sent_events(event_log: EventLog, source_id: uuid.UUID) -> list[NotificationSent]:
    return outcomes(event_log, source_id, NotificationSent)


async def inbox_of(service: RunningService, user_id: str) -> list[dict[str, Any]]:
    """The user's own inbox, read as that user (TR05)."""
    response = await service.get(user_id, "/me/inbox")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


ADMIN = Actor(user_id="integration-admin")  # holds the integration-admin role (TR06)
OPERATOR = "operator"  # holds the operator role: reads deliveries and reminders (TR05)


async def deliveries(service: RunningService, **params: str) -> list[dict[str, Any]]:
    """The delivery records, read as an operator."""
    response = await service.get(OPERATOR, "/deliveries", **params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["deliveries"]
    return rows


@dataclass
class Hook:
    webhook_id: str
    secret: str


async def register_webhook(
    commands: CommandClient,
    event_log: EventLog,
    receiver: WebhookReceiver,
    kinds: list[str],
    *,
    admin: Actor = ADMIN,
    url: str | None = None,
) -> Hook:
    hook = Hook(uid("hook"), uuid.uuid4().hex)
    receiver.secrets[hook.webhook_id] = hook.secret
    sent = await commands.send(
        RegisterWebhook(
            webhook_id=hook.webhook_id,
            url=url or receiver.url(hook.webhook_id),
            secret=hook.secret,
            event_types=kinds,
        ),
        admin,
    )
    (answer,) = await event_log.outcome(sent.message_id)
    assert answer.type == WebhookRegistered.TYPE, answer.payload
    return hook


async def remove_webhook(
    commands: CommandClient, event_log: EventLog, hook: Hook, *, admin: Actor = ADMIN
) -> None:
    sent = await commands.send(RemoveWebhook(webhook_id=hook.webhook_id), admin)
    await event_log.outcome(sent.message_id)


def outcomes(event_log: EventLog, source_id: uuid.UUID, model: type[E]) -> list[E]:
    """The delivery events (sent, failed, parked) of the notices a source event caused."""
    return [
        model.model_validate(e.payload)
        for e in event_log.caused_by(source_id)
        if e.type == model.TYPE
    ]
