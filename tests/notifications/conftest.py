"""Fixtures for the notifications tests: the service in-process (restartable), a real SMTP server
(aiosmtpd) and a real webhook receiver (Starlette under uvicorn), both on loopback ports, and
helpers that publish other services' events onto their topics as envelopes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
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
from starlette.responses import Response
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
from deploy.stack import free_port
from services.notifications import store
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


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


# --- webhooks --------------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """Records every POST to /hook/{name}; a name in `down` answers 503 (a receiver that is
    down); `gate`, when set, holds each request until it is opened."""

    port: int
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    gate: asyncio.Event | None = None
    in_flight: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{name}"

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        if name in self.down:
            return Response(status_code=503)
        if self.gate is not None:
            self.in_flight += 1
            await self.gate.wait()
            self.in_flight -= 1
        self.received.append((name, {k.lower(): v for k, v in request.headers.items()}, body))
        return Response(status_code=204)

    def keys(self, name: str) -> list[str]:
        return [h["idempotency-key"] for n, h, _ in self.received if n == name]

    def bodies(self, name: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for n, h, b in self.received if n == name]


@pytest.fixture(scope="session")
async def webhook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(port=free_port())
    app = Starlette(routes=[Route("/hook/{name}", receiver.endpoint, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=receiver.port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await wait_until(started)
    yield receiver
    server.should_exit = True
    await task


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
    settings_for: Callable[..., Settings], smtp: tuple[SmtpSink, int]
) -> AsyncIterator[Notifier]:
    spec = build_spec(SmtpSettings(host="127.0.0.1", port=smtp[1]), DELIVERY)

    async def make(**overrides: object) -> RunningService:
        return await start_service(spec, settings_for("notifications", **overrides))

    holder = Notifier(make)
    await holder.start()
    yield holder
    await holder.stop()


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
    response = await service.http.get(f"/users/{user_id}/inbox")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


OPERATOR = Actor(user_id="operator", position_id=None)


@dataclass
class Hook:
    webhook_id: str
    secret: str


async def register_webhook(
    commands: CommandClient, event_log: EventLog, receiver: WebhookReceiver, kinds: list[str]
) -> Hook:
    hook = Hook(uid("hook"), uuid.uuid4().hex)
    sent = await commands.send(
        RegisterWebhook(
            webhook_id=hook.webhook_id,
            url=receiver.url(hook.webhook_id),
            secret=hook.secret,
            event_types=kinds,
        ),
        OPERATOR,
    )
    (answer,) = await event_log.outcome(sent.message_id)
    assert answer.type == WebhookRegistered.TYPE
    return hook


async def remove_webhook(commands: CommandClient, event_log: EventLog, hook: Hook) -> None:
    sent = await commands.send(RemoveWebhook(webhook_id=hook.webhook_id), OPERATOR)
    await event_log.outcome(sent.message_id)


def outcomes(event_log: EventLog, source_id: uuid.UUID, model: type[E]) -> list[E]:
    """The delivery events (sent, failed, parked) of the notices a source event caused."""
    return [
        model.model_validate(e.payload)
        for e in event_log.caused_by(source_id)
        if e.type == model.TYPE
    ]
