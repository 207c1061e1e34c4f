"""Attacks on the directory (TR03, AC01, AC02) over the real broker, database, edge and identity
provider: each is refused naming the rule, and shown to have had no effect, in access's own
tables and, where it would have mattered, by allocation still refusing the would-be Senior
Officer's assignment (AL10). The accepted paths (an HR feed, an administrator's change) are
audited with who, when and what."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from contracts import Actor, Command, CommandRejected, Envelope
from contracts.access import (
    DirectoryLoaded,
    LoadDirectory,
    PrimaryPositionSpec,
    RequestAbsenceAccess,
    Role,
    UnitKind,
    UnitSpec,
    UserSpec,
)
from contracts.allocation import AssignWork, ReceiveReferral, WorkItemAssigned, WorkItemCreated
from deploy.identity import SignedInUsers
from services.access import store as access_store
from services.access.service import SPEC as ACCESS
from services.allocation import store as allocation_store
from services.allocation.domain import HUB_TEAM, MANAGEMENT_TEAM
from services.shared.settings import Settings
from tests.access.conftest import Org, eventually
from tests.conftest import RunningService, start_service
from tests.support.client import CommandClient, EventLog

DIRECTORY = (
    Path(__file__).resolve().parents[2] / "services" / "access" / "walkthrough_directory.json"
)
ADMIN = Actor(user_id="directory-admin")
SO_HUB = Actor(user_id="so-hub", position_id="pos-so-hub")
SO_MGMT = Actor(user_id="so-mgmt", position_id="pos-so-mgmt")
HUB_1 = Actor(user_id="hub-1", position_id="pos-hub-1")
ATTACKER_AS_SO_MGMT = Actor(user_id="hub-1", position_id="pos-so-mgmt")  # not theirs


def uid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def access(settings_for: Callable[..., Settings]) -> AsyncIterator[RunningService]:
    service = await start_service(ACCESS, settings_for("access"))
    yield service
    await service.http.aclose()
    await service.runtime.stop()


@pytest.fixture(scope="module")
async def walkthrough(
    access: RunningService,
    allocation: RunningService,
    commands: CommandClient,
    event_log: EventLog,
) -> RunningService:
    """The walkthrough directory loaded by the directory administrator, projected by
    allocation (so that its refusals below are about the positions, not a late projection)."""
    sent = await commands.send(LoadDirectory.model_validate_json(DIRECTORY.read_text()), ADMIN)
    events = await event_log.outcome(sent.message_id)
    assert DirectoryLoaded.TYPE in {e.type for e in events}, [e.payload for e in events]
    wanted = {"pos-so-hub", "pos-so-mgmt", "pos-hub-1", "pos-hub-2"}
    p = allocation_store.directory_t.positions

    async def projected() -> bool:
        async with allocation.runtime.engine.connect() as conn:
            rows = await conn.execute(sa.select(p.c.position_id).where(p.c.position_id.in_(wanted)))
            return set(rows.scalars()) == wanted

    await eventually(projected)
    return allocation


async def refused(
    commands: CommandClient, event_log: EventLog, command: Command, actor: Actor, rule: str
) -> tuple[Envelope, CommandRejected]:
    """Sends the command; its whole outcome is one rejection naming `rule` (nothing else was
    published, so no other service can have learnt of it)."""
    sent = await commands.send(command, actor)
    outcome = await event_log.outcome(sent.message_id)
    assert [e.type for e in outcome] == [CommandRejected.TYPE], [e.payload for e in outcome]
    rejection = CommandRejected.model_validate(outcome[0].payload)
    assert rejection.rule == rule, rejection
    return sent, rejection


async def accepted(
    commands: CommandClient, event_log: EventLog, command: Command, actor: Actor
) -> tuple[Envelope, list[Envelope]]:
    sent = await commands.send(command, actor)
    outcome = await event_log.outcome(sent.message_id)
    assert CommandRejected.TYPE not in {e.type for e in outcome}, [e.payload for e in outcome]
    return sent, outcome


async def table(access: RunningService, query: Any) -> list[dict[str, Any]]:
    async with access.runtime.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def position_row(access: RunningService, position_id: str) -> dict[str, Any] | None:
    p = access_store.positions
    rows = await table(access, sa.select(p).where(p.c.position_id == position_id))
    return rows[0] if rows else None


async def positions_of(access: RunningService, user_id: str) -> set[tuple[str, str, str]]:
    p = access_store.positions
    rows = await table(access, sa.select(p).where(p.c.user_id == user_id))
    return {(r["position_id"], r["unit_id"], r["role"]) for r in rows}


async def audit_of(access: RunningService, command_id: uuid.UUID) -> list[dict[str, Any]]:
    d = access_store.directory_changes
    return await table(
        access, sa.select(d).where(d.c.command_id == command_id).order_by(d.c.change_id)
    )


async def assignment_refused(
    commands: CommandClient, event_log: EventLog, actor: Actor
) -> CommandRejected:
    """A fresh Hub Team triage item: `actor` may not assign it (AL10); the Management Team's
    Senior Officer may (so the refusal is about the actor's position, nothing else)."""
    referral = await commands.send(
        ReceiveReferral(person_id=uid("P"), person_name="Tess Target", area="North"), SO_HUB
    )
    # a referral's outcome is a v1 and a v2 `work_item_created`: the v1 is the one meant
    (created,) = [
        e for e in await event_log.outcome(referral.message_id) if e.type == WorkItemCreated.TYPE
    ]
    item = WorkItemCreated.model_validate(created.payload)
    assign = AssignWork(
        person_id=item.person_id, work_item_id=item.work_item_id, to_position_id="pos-hub-2"
    )
    _, rejection = await refused(commands, event_log, assign, actor, "AL10")
    _, events = await accepted(commands, event_log, assign, SO_MGMT)
    assert WorkItemAssigned.TYPE in {e.type for e in events}
    return rejection


def senior_officer_for(user_id: str, position_id: str) -> PrimaryPositionSpec:
    return PrimaryPositionSpec(
        position_id=position_id, user_id=user_id, unit_id=MANAGEMENT_TEAM, role=Role.SENIOR_OFFICER
    )


async def test_tr03_unknown_user_cannot_load_a_directory(
    access: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    stranger = uid("stranger")
    unit = uid("shadow-team")
    load = LoadDirectory(
        directory_id=uid("dir"),
        units=[UnitSpec(unit_id=unit, name="Shadow team", kind=UnitKind.TEAM)],
        users=[UserSpec(user_id=stranger, name="Stranger", security_clearance=True)],
        positions=[
            PrimaryPositionSpec(
                position_id=f"pos-{stranger}",
                user_id=stranger,
                unit_id=unit,
                role=Role.SENIOR_OFFICER,
            )
        ],
    )
    sent, rejection = await refused(commands, event_log, load, Actor(user_id=stranger), "TR03")
    assert stranger in rejection.reason and "directory administrator" in rejection.reason
    u, un = access_store.users, access_store.units
    assert await table(access, sa.select(u).where(u.c.user_id == stranger)) == []
    assert await table(access, sa.select(un).where(un.c.unit_id == unit)) == []
    assert await positions_of(access, stranger) == set()
    assert await audit_of(access, sent.message_id) == []


async def test_tr03_hub_worker_cannot_make_themselves_a_management_senior_officer(
    access: RunningService,
    walkthrough: RunningService,
    commands: CommandClient,
    event_log: EventLog,
) -> None:
    """The measured attack: a Hub Team worker turns their own position into a Management Team
    Senior Officer's, then assigns work as one."""
    before = await positions_of(access, "hub-1")
    assert before == {("pos-hub-1", HUB_TEAM, Role.HUB_TEAM_WORKER.value)}
    load = LoadDirectory(
        directory_id=uid("dir"), positions=[senior_officer_for("hub-1", "pos-hub-1")]
    )
    sent, rejection = await refused(commands, event_log, load, HUB_1, "TR03")
    assert "hub-1 may not change the directory" in rejection.reason
    assert await positions_of(access, "hub-1") == before
    assert await audit_of(access, sent.message_id) == []
    await assignment_refused(commands, event_log, HUB_1)


async def test_tr03_hub_worker_cannot_take_another_users_senior_officer_position(
    access: RunningService,
    walkthrough: RunningService,
    commands: CommandClient,
    event_log: EventLog,
) -> None:
    """The second measured attack: the Management Team Senior Officer's position re-pointed to
    the Hub Team worker by the worker themselves."""
    load = LoadDirectory(
        directory_id=uid("dir"), positions=[senior_officer_for("hub-1", "pos-so-mgmt")]
    )
    sent, rejection = await refused(commands, event_log, load, HUB_1, "TR03")
    assert "directory administrator" in rejection.reason
    row = await position_row(access, "pos-so-mgmt")
    assert row is not None and row["user_id"] == "so-mgmt"
    assert await audit_of(access, sent.message_id) == []
    await assignment_refused(commands, event_log, ATTACKER_AS_SO_MGMT)


async def test_tr03_directory_admin_cannot_move_a_position_to_another_user(
    access: RunningService,
    walkthrough: RunningService,
    commands: CommandClient,
    event_log: EventLog,
) -> None:
    load = LoadDirectory(
        directory_id=uid("dir"), positions=[senior_officer_for("hub-1", "pos-so-mgmt")]
    )
    sent, rejection = await refused(commands, event_log, load, ADMIN, "TR03")
    assert "held by so-mgmt" in rejection.reason and "never moved" in rejection.reason
    row = await position_row(access, "pos-so-mgmt")
    assert row is not None and (row["user_id"], row["unit_id"]) == ("so-mgmt", MANAGEMENT_TEAM)
    assert await positions_of(access, "hub-1") == {
        ("pos-hub-1", HUB_TEAM, Role.HUB_TEAM_WORKER.value)
    }
    assert await audit_of(access, sent.message_id) == []
    await assignment_refused(commands, event_log, ATTACKER_AS_SO_MGMT)


async def test_tr03_hr_feed_may_load_the_directory_and_is_audited(
    access: RunningService,
    commands: CommandClient,
    event_log: EventLog,
    users: SignedInUsers,
) -> None:
    feed = uid("hr-feed")
    await users.signin.set_claims(feed, {"roles": ["hr-feed"]})
    users.forget(feed)
    try:
        joiner, unit = uid("joiner"), uid("team")
        load = LoadDirectory(
            directory_id=uid("dir"),
            units=[UnitSpec(unit_id=unit, name="New team", kind=UnitKind.TEAM)],
            users=[UserSpec(user_id=joiner, name="Jo Joiner")],
            positions=[
                PrimaryPositionSpec(
                    position_id=f"pos-{joiner}", user_id=joiner, unit_id=unit, role=Role.CASEWORKER
                )
            ],
        )
        sent, events = await accepted(commands, event_log, load, Actor(user_id=feed))
        assert DirectoryLoaded.TYPE in {e.type for e in events}
        assert all(e.actor is not None and e.actor.user_id == feed for e in events)
        assert await positions_of(access, joiner) == {
            (f"pos-{joiner}", unit, Role.CASEWORKER.value)
        }
        audit = await audit_of(access, sent.message_id)
        assert sorted((a["entity"], a["entity_id"], a["action"]) for a in audit) == [
            ("position", f"pos-{joiner}", "created"),
            ("unit", unit, "created"),
            ("user", joiner, "created"),
        ]
        assert {a["changed_by"] for a in audit} == {feed}
        assert all(a["authority"] == ["hr-feed"] and a["before"] is None for a in audit)
    finally:
        await users.signin.set_claims(feed, {})
        users.forget(feed)


async def test_tr03_directory_admin_change_is_audited_with_before_and_after(
    access: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    person, first, second = uid("mover"), uid("team-a"), uid("team-b")
    units = [
        UnitSpec(unit_id=first, name="Team A", kind=UnitKind.TEAM),
        UnitSpec(unit_id=second, name="Team B", kind=UnitKind.TEAM),
    ]
    people = [UserSpec(user_id=person, name="Mo Mover")]

    def at(unit_id: str) -> LoadDirectory:
        spec = PrimaryPositionSpec(
            position_id=f"pos-{person}", user_id=person, unit_id=unit_id, role=Role.CASEWORKER
        )
        return LoadDirectory(directory_id=uid("dir"), units=units, users=people, positions=[spec])

    await accepted(commands, event_log, at(first), ADMIN)
    again, _ = await accepted(commands, event_log, at(first), ADMIN)
    assert await audit_of(access, again.message_id) == []  # nothing changed, nothing recorded
    moved, _ = await accepted(commands, event_log, at(second), ADMIN)
    (change,) = await audit_of(access, moved.message_id)
    assert (change["entity"], change["entity_id"], change["action"]) == (
        "position",
        f"pos-{person}",
        "changed",
    )
    assert change["changed_by"] == ADMIN.user_id and change["authority"] == ["directory-admin"]
    assert change["before"]["unit_id"] == first and change["after"]["unit_id"] == second
    assert change["changed_at"] is not None


async def test_ac01_admin_load_giving_a_second_primary_position_is_refused_whole(
    access: RunningService,
    walkthrough: RunningService,
    commands: CommandClient,
    event_log: EventLog,
) -> None:
    """A valid new unit and user ride along with a second primary position for the Hub Team
    worker: nothing of the load is written."""
    newcomer, unit = uid("newcomer"), uid("team")
    load = LoadDirectory(
        directory_id=uid("dir"),
        units=[UnitSpec(unit_id=unit, name="Fine team", kind=UnitKind.TEAM)],
        users=[UserSpec(user_id=newcomer, name="Nina Newcomer")],
        positions=[
            PrimaryPositionSpec(
                position_id=f"pos-{newcomer}", user_id=newcomer, unit_id=unit, role=Role.CASEWORKER
            ),
            senior_officer_for("hub-1", uid("pos-hub-1-so")),
        ],
    )
    sent, rejection = await refused(commands, event_log, load, ADMIN, "AC01")
    assert "hub-1" in rejection.reason and "one primary position" in rejection.reason
    u, un = access_store.users, access_store.units
    assert await table(access, sa.select(u).where(u.c.user_id == newcomer)) == []
    assert await table(access, sa.select(un).where(un.c.unit_id == unit)) == []
    assert await positions_of(access, "hub-1") == {
        ("pos-hub-1", HUB_TEAM, Role.HUB_TEAM_WORKER.value)
    }
    assert await audit_of(access, sent.message_id) == []
    await assignment_refused(commands, event_log, HUB_1)


async def test_ac02_admin_load_withdrawing_clearance_from_a_holder_of_three_is_refused_whole(
    access: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    org = await Org(commands, event_log).load()
    grant = await org.granted(  # submitted, then actioned by the access team (AC20)
        RequestAbsenceAccess(
            user_id=org.id("tl-enf-2"),
            unit_ids=[org.id("team-enf-3"), org.id("team-enf-4")],
            reason="standing cover",
            discussion_held=True,
            discussed_with=org.id("tl-enf-3"),
        ),
        "sm-enf",
    )
    assert grant.rejection is None, grant.rejection
    assert len(await positions_of(access, org.id("tl-enf-2"))) == 3
    extra = org.id("team-extra")
    load = LoadDirectory(
        directory_id=uid("dir"),
        units=[UnitSpec(unit_id=extra, name="Extra", kind=UnitKind.TEAM, parent_id=org.id("cmg"))],
        users=[
            UserSpec(
                user_id=org.id("tl-enf-2"),
                name="tl-enf-2",
                line_manager_id=org.id("sm-enf"),
                security_clearance=False,
            )
        ],
    )
    sent, rejection = await refused(commands, event_log, load, ADMIN, "AC02")
    assert org.id("tl-enf-2") in rejection.reason and "clearance" in rejection.reason
    u, un = access_store.users, access_store.units
    (user,) = await table(access, sa.select(u).where(u.c.user_id == org.id("tl-enf-2")))
    assert user["security_clearance"] is True
    assert await table(access, sa.select(un).where(un.c.unit_id == extra)) == []
    assert await audit_of(access, sent.message_id) == []
