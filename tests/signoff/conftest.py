"""Fixtures for the sign-off service over the real broker and database: the service running
in-process, a directory seeded through access.events, and a driver that publishes steps as
allocation would and sends commands as signed actors."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from contracts import Actor, Command, CommandRejected, Envelope, Event, Topics
from contracts.allocation import StepType, WorkItemCreatedV2, WorkItemSnapshot, WorkState
from contracts.signoff import (
    RequestSent,
    SaveStep,
    SendRequest,
    StepSaved,
    StepTracked,
)
from deploy.identity import SignedInUsers
from deploy.walkthrough.driver import Driver
from services.shared.settings import Settings
from services.signoff import store
from tests.allocation.helpers import walkthrough_events
from tests.conftest import RunningService, start_service
from tests.support.client import CommandClient, EventLog, ThroughEdge, wait_until

NORTH_TEAM = "Wellbeing Service North Team"
E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Seat:
    """A user acting in one of their positions."""

    user_id: str
    position_id: str

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, position_id=self.position_id)


# The people of the seed's walkthrough, from the access service's canonical directory.
SENIOR_OFFICER = Seat("so-mgmt", "pos-so-mgmt")  # Management Team
NORTH_SENIOR_OFFICER = Seat("so-north", "pos-so-north")
TRUSTED_ASSESSOR = Seat("ta-north-1", "pos-ta-north-1")
SUPPORT_OFFICER = Seat("gso-north-1", "pos-gso-north-1")
SEATS = (SENIOR_OFFICER, NORTH_SENIOR_OFFICER, TRUSTED_ASSESSOR, SUPPORT_OFFICER)

COMPLETE_TA_ANSWERS = {
    "what_matters": "Staying independent at home",
    "presenting_needs": "Help with shopping and meals",
    "risks": "Falls at night",
    "support_plan": "Weekly visits from a support officer",
    "progressing_to_support_officer": "Yes",
}


async def _directory_applied(service: RunningService) -> bool:
    p = store.directory_t.positions
    async with service.runtime.engine.connect() as conn:
        have = set((await conn.execute(sa.select(p.c.position_id))).scalars())
    return {s.position_id for s in SEATS} <= have


def _settled(service: RunningService) -> Callable[[], Awaitable[bool]]:
    """True once the count of applied messages has stayed the same for three seconds (longer
    than a batch takes to commit)."""
    seen: list[tuple[int, float]] = []

    async def check() -> bool:
        inbox = service.runtime.spec.inbox
        async with service.runtime.engine.connect() as conn:
            count = int(await conn.scalar(sa.select(sa.func.count()).select_from(inbox)) or 0)
        now = time.monotonic()
        if not seen or seen[-1][0] != count:
            seen.append((count, now))
        return now - seen[-1][1] >= 3.0

    return check


@pytest.fixture(scope="session")
async def seeded_directory(commands: CommandClient) -> None:
    """The walkthrough directory published on access.events, as the access service does."""
    for event in walkthrough_events():
        await commands.publish_event(Topics.ACCESS_EVENTS, event)


@pytest.fixture(scope="session")
async def signoff(
    settings_for: Callable[..., Settings], seeded_directory: None, users: SignedInUsers
) -> AsyncIterator[RunningService]:
    from services.signoff.service import SPEC

    service = await start_service(SPEC, settings_for("signoff"), users)
    # A session's earlier tests leave thousands of allocation and access events that sign-off
    # reads from the start (every triage it tracks): a generous bound for the catch-up, then
    # until what it has applied stops growing, so no test waits behind that history.
    await wait_until(
        lambda: _directory_applied(service), "sign-off's directory seeded", timeout=300
    )
    await wait_until(_settled(service), "sign-off caught up with the topics", timeout=300)
    yield service
    await service.http.aclose()
    await service.runtime.stop()


@dataclass
class StepRef:
    step_id: uuid.UUID
    person_id: str
    request_id: uuid.UUID | None = None  # the request sent from it, once sent


class SignoffDriver:
    """Publishes steps as allocation would, sends commands, and waits for their outcomes."""

    def __init__(self, service: RunningService, commands: CommandClient, log: EventLog) -> None:
        self.service = service
        self.commands = commands
        self.log = log
        self.drive = Driver(ThroughEdge(commands, log), log, timeout=20.0)

    async def step(
        self,
        step_type: StepType = StepType.TRUSTED_ASSESSMENT,
        owner: Seat | None = TRUSTED_ASSESSOR,
    ) -> StepRef:
        """A step as allocation announces it, once sign-off has opened its form."""
        ref = StepRef(uuid.uuid4(), f"P-{uuid.uuid4().hex[:8]}")
        await self.commands.publish_event(
            Topics.ALLOCATION_EVENTS,
            WorkItemCreatedV2(
                person_id=ref.person_id,
                items=[
                    WorkItemSnapshot(
                        work_item_id=ref.step_id,
                        person_id=ref.person_id,
                        person_name="Ada Lovelace",
                        step_type=step_type,
                        state=WorkState.INCOMPLETE,
                        owner_kind="worker" if owner else "team",
                        owner_id=owner.position_id if owner else NORTH_TEAM,
                        priority="normal",
                    )
                ],
                created_at=datetime.now(UTC),
            ),
        )
        await self.log.wait_for(lambda: self.tracked(ref.step_id))
        return ref

    def tracked(self, step_id: uuid.UUID) -> list[Envelope]:
        return [
            e
            for e in self.log.envelopes()
            if e.type == StepTracked.TYPE and e.payload["step_id"] == str(step_id)
        ]

    async def ok(self, command: Command, seat: Seat, expected: type[E]) -> E:
        """The command applied: its outcome is one `expected` event (with, for an allocation
        v1 type, its v2 successor published beside it)."""
        event = await self.drive.ok(command, seat.actor, expected)
        successor = expected.TYPE.rpartition(".v")[0] + ".v2"
        outcome = [e for e in self.drive.outcome if e.type != successor]
        assert len(outcome) == 1, self.drive.outcome
        return event

    async def refused(self, command: Command, seat: Seat, rule: str) -> CommandRejected:
        """The command refused by `rule`, and nothing else came of it."""
        rejected = await self.drive.refused(command, seat.actor, rule)
        assert len(self.drive.outcome) == 1, self.drive.outcome
        return rejected

    async def summary(self, ref: StepRef, reader: Seat = SENIOR_OFFICER) -> dict[str, Any]:
        """The step's summary as the signed-in `reader` (TR05: the sign-off officer reads it)."""
        response = await self.service.get(reader.user_id, f"/steps/{ref.step_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def requested(self, step_type: StepType = StepType.TRUSTED_ASSESSMENT) -> StepRef:
        """A step with its form complete and the mandatory request sent."""
        owner = TRUSTED_ASSESSOR if step_type is StepType.TRUSTED_ASSESSMENT else SUPPORT_OFFICER
        ref = await self.step(step_type, owner)
        answers = (
            COMPLETE_TA_ANSWERS
            if step_type is StepType.TRUSTED_ASSESSMENT
            else {
                "actions_delivered": "Weekly visits",
                "outcomes": "Managing at home",
                "further_support_needed": "No",
            }
        )
        await self.ok(
            SaveStep(step_id=ref.step_id, person_id=ref.person_id, answers=answers),
            owner,
            StepSaved,
        )
        sent = await self.ok(
            SendRequest(step_id=ref.step_id, person_id=ref.person_id), owner, RequestSent
        )
        ref.request_id = sent.request_id
        return ref


@pytest.fixture
def driver(signoff: RunningService, commands: CommandClient, event_log: EventLog) -> SignoffDriver:
    return SignoffDriver(signoff, commands, event_log)
