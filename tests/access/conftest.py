"""Fixtures of the access tests: the access service in-process (restartable, for the saga's
kill/restart test), and a small agency directory loaded per test under a unique prefix so that
tests sharing the session's database never see each other's users."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from contracts import Actor, Command, CommandRejected, Envelope, Topics
from contracts.access import (
    AccessGrantRecorded,
    ActionP30,
    DirectoryLoaded,
    LoadDirectory,
    P30Recorded,
    PrimaryPositionSpec,
    Role,
    UnitKind,
    UnitSpec,
    UserSpec,
)
from deploy.identity import SignedInUsers
from services.access.service import SPEC
from services.shared.runtime import ServiceRuntime
from services.shared.settings import Settings
from tests.conftest import RunningService, start_service
from tests.support.client import CommandClient, EventLog

ADMIN = Actor(user_id="directory-admin")
T = TypeVar("T")


class AccessService:
    """The running access service; `stop`/`start` simulate a crash and a restart. `get` and
    `post` read its API as a signed-in user (TR05)."""

    def __init__(self, settings: Settings, users: SignedInUsers | None = None) -> None:
        self.settings = settings
        self.users = users
        self.running: RunningService | None = None

    async def start(self) -> None:
        self.running = await start_service(SPEC, self.settings, self.users)

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.http.aclose()
            await self.running.runtime.stop()
            self.running = None

    @property
    def runtime(self) -> ServiceRuntime:
        assert self.running is not None
        return self.running.runtime

    @property
    def http(self) -> httpx.AsyncClient:
        assert self.running is not None
        return self.running.http

    async def get(self, user_id: str, path: str, **params: str) -> httpx.Response:
        assert self.running is not None
        return await self.running.get(user_id, path, **params)

    async def post(self, user_id: str, path: str, body: object) -> httpx.Response:
        assert self.running is not None
        return await self.running.post(user_id, path, body)


@pytest.fixture(scope="session")
async def access(
    settings_for: Callable[..., Settings], users: SignedInUsers
) -> AsyncIterator[AccessService]:
    service = AccessService(settings_for("access"), users)
    await service.start()
    yield service
    await service.stop()


@dataclass
class Outcome:
    sent: Envelope
    events: list[Envelope]

    def of(self, model: type[Any]) -> list[Any]:
        return [model.model_validate(e.payload) for e in self.events if e.type == model.TYPE]

    def one(self, model: type[Any]) -> Any:
        (found,) = self.of(model)
        return found

    @property
    def rejection(self) -> CommandRejected | None:
        found = self.of(CommandRejected)
        return found[0] if found else None


class Org:
    """A small agency under a unique prefix: a case-group root with Enforcement (two teams and
    ten spare teams for the limits), the four named segments, Appeals' functionally unique
    tribunal liaison, an International segment outside AC13's list, and the access
    administration team (FLLS, AC20) that actions the P30s."""

    def __init__(self, commands: CommandClient, event_log: EventLog) -> None:
        self.p = f"t{uuid.uuid4().hex[:6]}-"
        self.commands = commands
        self.event_log = event_log

    def id(self, name: str) -> str:
        return f"{self.p}{name}"

    def pos(self, name: str) -> str:
        return f"{self.p}pos-{name}"

    def actor(self, name: str) -> Actor:
        return Actor(user_id=self.id(name), position_id=self.pos(name))

    def directory(self) -> LoadDirectory:
        i = self.id
        units = [
            UnitSpec(unit_id=i("cmg"), name="Case group", kind=UnitKind.SEGMENT),
            UnitSpec(
                unit_id=i("enforcement"),
                name="Enforcement",
                kind=UnitKind.SEGMENT,
                parent_id=i("cmg"),
                code="FS_GB_CMENF_000_ENFORCEMENT",
                hopper_id=i("hopper-enforcement"),
            ),
            UnitSpec(
                unit_id=i("appeals"),
                name="Appeals",
                kind=UnitKind.SEGMENT,
                parent_id=i("cmg"),
                code="FS_GB_CMEXF_000_APPEALS",
                hopper_id=i("hopper-appeals"),
            ),
            UnitSpec(
                unit_id=i("jud-rev"),
                name="Judicial review",
                kind=UnitKind.SEGMENT,
                parent_id=i("cmg"),
                code="FS_GB_CMEXF_000_JUD REV",
            ),
            UnitSpec(
                unit_id=i("tribunal"),
                name="Appeals tribunal liaison",
                kind=UnitKind.SEGMENT,
                parent_id=i("appeals"),
                functionally_unique=True,
            ),
            UnitSpec(
                unit_id=i("international"),
                name="International casework",
                kind=UnitKind.SEGMENT,
                parent_id=i("cmg"),
                code="FS_GB_CMINT_000_INTERNATIONAL",
                functionally_unique=True,
            ),
            UnitSpec(
                unit_id=i("team-appeals"),
                name="Appeals team",
                kind=UnitKind.TEAM,
                parent_id=i("appeals"),
                hopper_id=i("hopper-team-appeals"),
            ),
            UnitSpec(unit_id=i("flls"), name="FLLS access team", kind=UnitKind.ACCESS_TEAM),
        ]
        units += [
            UnitSpec(
                unit_id=i(f"team-enf-{n}"),
                name=f"Enforcement team {n}",
                kind=UnitKind.TEAM,
                parent_id=i("enforcement"),
                hopper_id=i(f"hopper-team-enf-{n}"),
            )
            for n in range(1, 13)
        ]
        people = [
            ("director", None, True, "cmg", Role.SEGMENT_MANAGER),
            ("sm-enf", "director", True, "enforcement", Role.SEGMENT_MANAGER),
            ("tl-enf-1", "sm-enf", True, "team-enf-1", Role.TEAM_LEADER),
            ("tl-enf-2", "sm-enf", True, "team-enf-2", Role.TEAM_LEADER),
            ("tl-enf-3", "sm-enf", False, "team-enf-3", Role.TEAM_LEADER),
            ("cw-1", "tl-enf-1", True, "team-enf-1", Role.CASEWORKER),
            ("cw-2", "tl-enf-1", False, "team-enf-1", Role.CASEWORKER),
            ("sm-appeals", "director", True, "appeals", Role.SEGMENT_MANAGER),
            ("tl-appeals", "sm-appeals", True, "team-appeals", Role.TEAM_LEADER),
            ("cw-appeals", "tl-appeals", False, "team-appeals", Role.CASEWORKER),
            ("sm-jud-rev", "director", True, "jud-rev", Role.SEGMENT_MANAGER),
            ("flls-1", "director", True, "flls", Role.ACCESS_ADMINISTRATOR),
            ("flls-2", "director", True, "flls", Role.ACCESS_ADMINISTRATOR),
        ]
        return LoadDirectory(
            directory_id=self.p,
            units=units,
            users=[
                UserSpec(
                    user_id=i(name),
                    name=name,
                    line_manager_id=i(manager) if manager else None,
                    security_clearance=cleared,
                )
                for name, manager, cleared, _, _ in people
            ],
            positions=[
                PrimaryPositionSpec(
                    position_id=self.pos(name), user_id=i(name), unit_id=i(unit), role=role
                )
                for name, _, _, unit, role in people
            ],
        )

    async def load(self) -> Org:
        sent = await self.commands.send(self.directory(), ADMIN)
        await self.event_log.wait_for(
            lambda: [
                e
                for e in self.event_log.caused_by(sent.message_id)
                if e.type == DirectoryLoaded.TYPE
            ]
        )
        return self

    async def send(self, command: Command, actor: str | Actor, *, wait_for: Any = None) -> Outcome:
        """Sends as the named user (primary position) and waits for the rejection, or for an
        event of type `wait_for` (default: any outcome)."""
        who = self.actor(actor) if isinstance(actor, str) else actor
        sent = await self.commands.send(command, who)

        def done() -> list[Envelope]:
            events = self.event_log.caused_by(sent.message_id)
            types = {e.type for e in events}
            if wait_for is None or CommandRejected.TYPE in types or wait_for.TYPE in types:
                return events
            return []

        return Outcome(sent, await self.event_log.wait_for(done))

    async def action(
        self, outcome: Outcome, by: str = "flls-1", *, wait_for: Any = AccessGrantRecorded
    ) -> Outcome:
        """AC20: the access team actions the P30 the outcome recorded."""
        assert outcome.rejection is None, outcome.rejection
        p30 = outcome.one(P30Recorded)
        return await self.send(
            ActionP30(user_id=p30.user_id, p30_id=p30.p30_id), by, wait_for=wait_for
        )

    async def granted(self, command: Command, requester: str, *, by: str = "flls-1") -> Outcome:
        """Submits the P30 as the requester and has the access team action it (AC20)."""
        submitted = await self.send(command, requester, wait_for=P30Recorded)
        return await self.action(submitted, by)

    async def answer(self, event: Any) -> Envelope:
        """Publishes an allocation answer (what allocation would publish) on allocation.events."""
        envelope = Envelope.wrap(event)
        await self.commands.send_raw(
            Topics.ALLOCATION_EVENTS, envelope.model_dump_json().encode(), key=event.key()
        )
        return envelope


@pytest.fixture
async def org(access: AccessService, commands: CommandClient, event_log: EventLog) -> Org:
    return await Org(commands, event_log).load()


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    """Waits for a state no event announces (a projection caught up): polls until `check`
    returns something truthy, failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)
