"""The access walkthrough against the real allocation service, in-process: an enforcement
caseworker gets hierarchical access to Appeals, is given Appeals work, the line manager removes
the access, allocation moves the work back to the Appeals hopper, and only then the access goes
(AC12, AC15, AC16), each P30 actioned by the access team (AC20). The emergency path goes
through the access team, who grant at once, and stays flagged until its P30 (AC11, AC21).
The saga also completes exactly once when access is stopped before allocation answers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import services.access as access_package
from contracts import Actor
from contracts.access import (
    AccessGrantRecorded,
    AccessKind,
    ActionP30,
    AnswerEmergencyRequest,
    ChangePosition,
    CurrentPositionChanged,
    EmergencyAccessGranted,
    EmergencyAccessRequested,
    LoadDirectory,
    LodgeP30,
    P30Lodged,
    P30Recorded,
    PositionReleaseRequested,
    PositionRevoked,
    RequestAccessRemoval,
    RequestEmergencyAbsenceAccess,
    RequestHierarchicalAccess,
)
from contracts.allocation import (
    AssignWork,
    PositionWorkReleased,
    ReceiveServiceRequest,
    WorkItemAssigned,
    WorkItemCreated,
)
from services.allocation import store as allocation_store
from tests.access.conftest import ADMIN, AccessService, Org, Outcome, eventually
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

DIRECTORY = Path(access_package.__file__).parent / "walkthrough_directory.json"


def me(user: str) -> Actor:
    return Actor(user_id=user, position_id=f"pos-{user}")


async def _send(
    commands: CommandClient, log: EventLog, command: Any, actor: Actor, wait: Any
) -> Outcome:
    sent = await commands.send(command, actor)

    def done() -> list[Any]:
        events = log.caused_by(sent.message_id)
        types = {e.type for e in events}
        return events if wait.TYPE in types or "platform.command_rejected.v1" in types else []

    outcome = Outcome(sent, await log.wait_for(done))
    assert outcome.rejection is None, outcome.rejection
    return outcome


async def _actioned(
    commands: CommandClient, log: EventLog, submitted: Outcome, wait: Any, by: str = "flls-1"
) -> Outcome:
    """AC20: the access team (FLLS) actions the P30 the submission recorded."""
    p30 = submitted.one(P30Recorded)
    return await _send(
        commands, log, ActionP30(user_id=p30.user_id, p30_id=p30.p30_id), me(by), wait
    )


async def _allocation_knows(allocation: RunningService, position_id: str) -> None:
    """Allocation projects positions from access.events; wait until it has this one."""
    positions = allocation_store.directory_t.positions

    async def active() -> bool:
        async with allocation.runtime.engine.connect() as conn:
            return bool(
                await conn.scalar(
                    sa.select(positions.c.active).where(positions.c.position_id == position_id)
                )
            )

    await eventually(active)


async def _held_by(allocation: RunningService, position_id: str) -> int:
    w = allocation_store.work_items
    async with allocation.runtime.engine.connect() as conn:
        return int(
            await conn.scalar(
                sa.select(sa.func.count())
                .select_from(w)
                .where(w.c.owner_kind == "worker", w.c.owner_id == position_id)
            )
            or 0
        )


async def test_ac12_ac15_ac16_walkthrough_appeals_access_removed_after_work_returns_to_hopper(
    access: AccessService,
    allocation: RunningService,
    commands: CommandClient,
    event_log: EventLog,
) -> None:
    load = LoadDirectory.model_validate(json.loads(DIRECTORY.read_text()))
    sent = await commands.send(load, ADMIN)
    await event_log.wait_for(lambda: event_log.caused_by(sent.message_id))

    # The enforcement TL completes the P30, agreed with the Appeals TL; FLLS actions it.
    submitted = await _send(
        commands,
        event_log,
        RequestHierarchicalAccess(
            user_id="cw-enf-1",
            unit_ids=["team-appeals-1"],
            agreed_with="tl-appeals-1",
            reason="Appeals needs enforcement work completed",
        ),
        me("tl-enf-1"),
        P30Recorded,
    )
    granted = await _actioned(commands, event_log, submitted, AccessGrantRecorded)
    appeals = granted.one(AccessGrantRecorded).position_id
    await _allocation_knows(allocation, appeals)

    # Two service requests enter the Appeals team's hopper; its TL passes them to the caseworker.
    items = []
    for _ in range(2):
        intake = await _send(
            commands,
            event_log,
            ReceiveServiceRequest(
                person_id=f"P-{uuid.uuid4().hex[:8]}",
                person_name="Customer",
                unit_id="team-appeals-1",
            ),
            me("tl-appeals-1"),
            WorkItemCreated,
        )
        created = intake.one(WorkItemCreated)
        assert created.owner_id == "hopper-team-appeals-1"
        items.append((created.work_item_id, created.person_id))
    for work_item_id, person_id in items:
        await _send(
            commands,
            event_log,
            AssignWork(person_id=person_id, work_item_id=work_item_id, to_position_id=appeals),
            me("tl-appeals-1"),
            WorkItemAssigned,
        )
    assert await _held_by(allocation, appeals) == 2

    # The caseworker works them from the Appeals position.
    await _send(
        commands,
        event_log,
        ChangePosition(user_id="cw-enf-1", position_id=appeals),
        me("cw-enf-1"),
        CurrentPositionChanged,
    )

    async def my_requests() -> set[str]:
        body = (await access.get("cw-enf-1", "/me/my-service-requests")).json()
        return {i["work_item_id"] for i in body["items"]} if len(body["items"]) == 2 else set()

    assert await eventually(my_requests) == {str(i) for i, _ in items}

    # The enforcement TL's line manager asks for the removal; allocation releases; access goes.
    asked = await _send(
        commands,
        event_log,
        RequestAccessRemoval(
            user_id="cw-enf-1",
            position_id=appeals,
            kind=AccessKind.HIERARCHICAL,
            reason="Appeals work completed",
        ),
        me("sm-enf"),
        P30Recorded,
    )
    removal = await _actioned(commands, event_log, asked, PositionReleaseRequested, "flls-2")
    release = removal.one(PositionReleaseRequested)

    def revoked() -> list[Any]:
        return [
            e
            for e in event_log.envelopes()
            if e.type == PositionRevoked.TYPE and e.payload["position_id"] == appeals
        ]

    await event_log.wait_for(revoked)
    (answer,) = [
        PositionWorkReleased.model_validate(e.payload)
        for e in event_log.envelopes()
        if e.type == PositionWorkReleased.TYPE
        and e.payload["release_id"] == str(release.release_id)
    ]
    assert {m.work_item_id for m in answer.moved} == {i for i, _ in items}
    assert {m.to_owner.id for m in answer.moved} == {"hopper-team-appeals-1"}
    for work_item_id, _ in items:
        # Read as the Appeals team leader, who screens the team's hopper (TR05, AL10).
        item = (await allocation.get("tl-appeals-1", f"/work-items/{work_item_id}")).json()
        assert (item["owner_kind"], item["owner_id"]) == ("hopper", "hopper-team-appeals-1")
    assert await _held_by(allocation, appeals) == 0
    view = (await access.get("cw-enf-1", "/me/positions")).json()
    assert view["secondary"] == [] and view["current_position_id"] == "pos-cw-enf-1"
    p30s = (await access.get("cw-enf-1", "/me/p30s")).json()["p30s"]
    assert [(p["action"], p["state"]) for p in p30s] == [
        ("set-up", "complete"),
        ("removal", "complete"),
    ]

    # Emergency absence-related access: the access team grants it at once, flagged until its
    # P30 arrives.
    requested = await _send(
        commands,
        event_log,
        RequestEmergencyAbsenceAccess(
            user_id="tl-enf-2",
            unit_id="team-enf-1",
            absent_user_id="tl-enf-1",
            reason="TL unexpectedly absent",
        ),
        me("sm-enf"),
        EmergencyAccessRequested,
    )
    emergency = await _send(
        commands,
        event_log,
        AnswerEmergencyRequest(
            user_id="tl-enf-2", p30_id=requested.one(EmergencyAccessRequested).p30_id
        ),
        me("flls-1"),
        EmergencyAccessGranted,
    )
    p30_id = emergency.one(EmergencyAccessGranted).p30_id
    outstanding = (await access.get("sm-enf", "/p30s/outstanding")).json()["outstanding"]
    assert str(p30_id) in {o["p30_id"] for o in outstanding}
    await _allocation_knows(allocation, emergency.one(EmergencyAccessGranted).position_id)
    await _send(
        commands,
        event_log,
        LodgeP30(
            user_id="tl-enf-2", p30_id=p30_id, discussion_held=True, discussed_with="tl-enf-1"
        ),
        me("sm-enf"),
        P30Lodged,
    )
    outstanding = (await access.get("sm-enf", "/p30s/outstanding")).json()["outstanding"]
    assert str(p30_id) not in {o["p30_id"] for o in outstanding}


async def test_ac16_saga_with_allocation_completes_once_when_access_is_down_at_the_answer(
    access: AccessService,
    allocation: RunningService,
    org: Org,
) -> None:
    """Allocation is held (a row lock on the position's work) until access has been stopped,
    so its answer arrives while access is down; access completes the saga once on restart."""
    granted = await org.granted(
        RequestHierarchicalAccess(
            user_id=org.id("cw-1"),
            unit_ids=[org.id("team-appeals")],
            agreed_with=org.id("tl-appeals"),
        ),
        "tl-enf-1",
    )
    appeals = granted.one(AccessGrantRecorded).position_id
    await _allocation_knows(allocation, appeals)
    intake = await org.send(
        ReceiveServiceRequest(
            person_id=f"P-{uuid.uuid4().hex[:8]}",
            person_name="Customer",
            unit_id=org.id("team-appeals"),
        ),
        "tl-appeals",
        wait_for=WorkItemCreated,
    )
    created = intake.one(WorkItemCreated)
    assert created.owner_id == org.id("hopper-team-appeals")
    work_item_id, person_id = created.work_item_id, created.person_id
    assigned = await org.send(
        AssignWork(person_id=person_id, work_item_id=work_item_id, to_position_id=appeals),
        "tl-appeals",
        wait_for=WorkItemAssigned,
    )
    assert assigned.rejection is None

    w = allocation_store.work_items
    async with allocation.runtime.engine.connect() as gate:
        await gate.begin()
        await gate.execute(sa.select(w).where(w.c.work_item_id == work_item_id).with_for_update())
        asked = await org.send(
            RequestAccessRemoval(
                user_id=org.id("cw-1"), position_id=appeals, kind=AccessKind.HIERARCHICAL
            ),
            "sm-enf",
            wait_for=P30Recorded,
        )
        removal = await org.action(asked, wait_for=PositionReleaseRequested)
        release_id = str(removal.one(PositionReleaseRequested).release_id)
        await access.stop()
        await gate.rollback()  # allocation may now release the work

    try:
        answers = await org.event_log.wait_for(
            lambda: [
                e
                for e in org.event_log.envelopes()
                if e.type == PositionWorkReleased.TYPE and e.payload["release_id"] == release_id
            ]
        )
    finally:
        await access.start()
    assert len(answers) == 1  # published while access was down

    def revoked() -> list[Any]:
        return [
            e
            for e in org.event_log.envelopes()
            if e.type == PositionRevoked.TYPE and e.payload["position_id"] == appeals
        ]

    await org.event_log.wait_for(revoked)
    marker = await org.send(
        ChangePosition(user_id=org.id("cw-1"), position_id=org.pos("cw-1")),
        "cw-1",
        wait_for=CurrentPositionChanged,
    )
    assert marker.rejection is None
    assert len(revoked()) == 1
    assert await _held_by(allocation, appeals) == 0
    item = (await allocation.get(org.id("tl-appeals"), f"/work-items/{work_item_id}")).json()
    assert (item["owner_kind"], item["owner_id"]) == ("hopper", org.id("hopper-team-appeals"))
