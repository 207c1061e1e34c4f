"""Helpers for the allocation tests: the walkthrough's actors, publishing access and sign-off
events as other services would, and sending commands that must succeed or be refused."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from contracts import Actor, Command, CommandRejected, Envelope, Event, Topics
from contracts.access import (
    AccessKind,
    LoadDirectory,
    PositionGranted,
    Role,
    UnitDefined,
    UserRegistered,
)
from contracts.allocation import CreateStep, ReceiveReferral, StepType, WorkItemCreated
from contracts.signoff import NextAction, StepFinished
from services.allocation import store
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

T = TypeVar("T")

# The canonical walkthrough directory is the access service's (its LoadDirectory payload).
WALKTHROUGH_DIRECTORY = (
    Path(__file__).resolve().parents[2] / "services" / "access" / "walkthrough_directory.json"
)

SO_HUB = Actor(user_id="so-hub", position_id="pos-so-hub")
SO_NORTH = Actor(user_id="so-north", position_id="pos-so-north")
SO_SOUTH = Actor(user_id="so-south", position_id="pos-so-south")
SO_MGMT = Actor(user_id="so-mgmt", position_id="pos-so-mgmt")
HUB_1 = Actor(user_id="hub-1", position_id="pos-hub-1")
HUB_2 = Actor(user_id="hub-2", position_id="pos-hub-2")
TA_NORTH = Actor(user_id="ta-north-1", position_id="pos-ta-north-1")
GSO_NORTH = Actor(user_id="gso-north-1", position_id="pos-gso-north-1")
TL_ENF_1 = Actor(user_id="tl-enf-1", position_id="pos-tl-enf-1")
TL_ENF_2 = Actor(user_id="tl-enf-2", position_id="pos-tl-enf-2")
CW_ENF_1 = Actor(user_id="cw-enf-1", position_id="pos-cw-enf-1")  # team-enf-1
CW_ENF_3 = Actor(user_id="cw-enf-3", position_id="pos-cw-enf-3")  # team-enf-2


def walkthrough_events() -> list[Event]:
    """The events the access service publishes when it loads the walkthrough directory."""
    load = LoadDirectory.model_validate_json(WALKTHROUGH_DIRECTORY.read_text())
    return [
        *(UnitDefined(**u.model_dump(include=set(UnitDefined.model_fields))) for u in load.units),
        *(UserRegistered(**u.model_dump()) for u in load.users),
        *(
            PositionGranted(
                user_id=p.user_id,
                position_id=p.position_id,
                unit_id=p.unit_id,
                role=p.role,
                kind=AccessKind.PRIMARY,
            )
            for p in load.positions
        ),
    ]


def new_person() -> str:
    return f"P-{uuid.uuid4().hex[:10]}"


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    """Wait until `check` returns something truthy (a state another process converges to)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


async def publish(commands: CommandClient, event: Event, topic: str) -> Envelope:
    """Publish an event as its owning service would (signoff.events, access.events)."""
    envelope = Envelope.wrap(event)
    await commands.send_raw(topic, envelope.model_dump_json().encode(), key=event.key())
    return envelope


async def publish_directory(
    commands: CommandClient, service: RunningService, events: list[Event]
) -> None:
    """Publish directory events on access.events and wait until the projection has them."""
    for event in events:
        await publish(commands, event, Topics.ACCESS_EVENTS)
    wanted = {e.position_id for e in events if isinstance(e, PositionGranted)}
    units = {e.unit_id for e in events if isinstance(e, UnitDefined)}
    p, u = store.directory_t.positions, store.directory_t.units

    async def projected() -> bool:
        async with service.runtime.engine.connect() as conn:
            have = set(
                (await conn.execute(sa.select(p.c.position_id).where(p.c.position_id.in_(wanted))))
                .scalars()
                .all()
            )
            have_units = set(
                (await conn.execute(sa.select(u.c.unit_id).where(u.c.unit_id.in_(units))))
                .scalars()
                .all()
            )
        return have == wanted and have_units == units

    await eventually(projected)


async def grant(
    commands: CommandClient,
    service: RunningService,
    unit_id: str,
    role: Role,
    kind: AccessKind = AccessKind.PRIMARY,
    user_id: str | None = None,
) -> Actor:
    """A fresh position (so a test may revoke it without harm), held by a fresh user or by
    `user_id` (a secondary position)."""
    user = user_id or f"u-{uuid.uuid4().hex[:8]}"
    position = f"pos-{user}-{uuid.uuid4().hex[:6]}"
    events: list[Event] = [] if user_id else [UserRegistered(user_id=user, name=f"Worker {user}")]
    events.append(
        PositionGranted(user_id=user, position_id=position, unit_id=unit_id, role=role, kind=kind)
    )
    await publish_directory(commands, service, events)
    return Actor(user_id=user, position_id=position)


async def ok(
    commands: CommandClient, event_log: EventLog, command: Command, actor: Actor
) -> list[Envelope]:
    """Send a command that must be applied; its events."""
    sent = await commands.send(command, actor)
    events = await event_log.outcome(sent.message_id)
    rejected = [e for e in events if e.type == CommandRejected.TYPE]
    assert not rejected, rejected[0].payload
    return events


async def refused(
    commands: CommandClient, event_log: EventLog, command: Command, actor: Actor
) -> CommandRejected:
    """Send a command that must be refused; the rejection."""
    sent = await commands.send(command, actor)
    (event,) = await event_log.outcome(sent.message_id)
    assert event.type == CommandRejected.TYPE, event.payload
    return CommandRejected.model_validate(event.payload)


def only(events: list[Envelope], model: type[T]) -> T:
    matching = [e for e in events if e.type == model.TYPE]  # type: ignore[attr-defined]
    assert len(matching) == 1, [e.type for e in events]
    return model.model_validate(matching[0].payload)  # type: ignore[attr-defined,no-any-return]


async def referral(
    commands: CommandClient, event_log: EventLog, name: str = "Ada Lovelace", area: str = "North"
) -> WorkItemCreated:
    person = new_person()
    events = await ok(
        commands, event_log, ReceiveReferral(person_id=person, person_name=name, area=area), SO_HUB
    )
    return only(events, WorkItemCreated)


async def step(
    commands: CommandClient, event_log: EventLog, person_id: str, step_type: StepType
) -> WorkItemCreated:
    command = CreateStep(person_id=person_id, step_type=step_type)
    events = await ok(commands, event_log, command, SO_HUB)
    return only(events, WorkItemCreated)


async def get(service: RunningService, reader: Actor | str, path: str, **params: Any) -> Any:
    """GET a read API path as the signed-in `reader` (TR05), which must be allowed to see it."""
    user = reader if isinstance(reader, str) else reader.user_id
    response = await service.get(user, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def next_action_work(
    commands: CommandClient,
    event_log: EventLog,
    person_id: str,
    assignee_kind: str,
    assignee_id: str,
    action_type: str = "WB Case Monitoring",
) -> WorkItemCreated:
    """Work created the way sign-off creates it: a finished step's next action (SO09)."""
    finished = StepFinished(
        step_id=uuid.uuid4(),
        person_id=person_id,
        step_type=StepType.TRUSTED_ASSESSMENT,
        next_actions=[
            NextAction(
                action_id=uuid.uuid4(),
                action_type=action_type,
                assignee_kind=assignee_kind,
                assignee_id=assignee_id,
            )
        ],
    )
    sent = await publish(commands, finished, Topics.SIGNOFF_EVENTS)
    return only(await event_log.outcome(sent.message_id), WorkItemCreated)


async def reaction(
    commands: CommandClient, event_log: EventLog, event: Event, topic: str
) -> list[Envelope]:
    """Publish another service's event and wait for the events allocation emits in answer."""
    sent = await publish(commands, event, topic)
    return await event_log.outcome(sent.message_id)
