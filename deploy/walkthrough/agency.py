"""The agency's secondary access (seed 003), step by step: standing absence-related access, an
emergency grant and its later P30, an emergency answered with a time scale, hierarchical access
to Appeals and its removal with the held work moved back to the hopper, and the emergency
accesses removed."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from contracts import Actor, Event
from contracts.access import (
    AccessGrantRecorded,
    AccessKind,
    ActionP30,
    AnswerEmergencyRequest,
    ChangePosition,
    CurrentPositionChanged,
    EmergencyAccessGranted,
    EmergencyAccessRequested,
    EmergencyAccessScheduled,
    LodgeP30,
    P30Lodged,
    P30Recorded,
    PositionReleaseRequested,
    PositionRevoked,
    RequestAbsenceAccess,
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
from deploy.walkthrough.driver import Driver, StepFailed, expect, items
from deploy.walkthrough.people import (
    APPEALS_HOPPER,
    APPEALS_TEAM,
    CW_ENF_1,
    FLLS_1,
    FLLS_2,
    SM_ENF,
    SM_JUD_REV,
    SPECIAL_CLIENT_TEAM,
    TL_APPEALS,
    TL_ENF_1,
    TL_ENF_2,
    TL_JUD_REV,
)
from deploy.walkthrough.procedure import NOT_YET, Procedure

E = TypeVar("E", bound=Event)


@dataclass
class Access:
    """What the access steps have learnt so far: the positions granted, the P30 lodged later,
    the Appeals work item."""

    emergency_p30: uuid.UUID = NOT_YET
    emergency_position: str = ""
    scheduled_position: str = ""
    appeals_position: str = ""
    appeals_item: uuid.UUID = NOT_YET
    appeals_person: str = ""


async def actioned(d: Driver, submitted: P30Recorded, by: Actor, outcome: type[E]) -> E:
    """AC20: the access team actions the submitted P30; the grant or removal happens then."""
    if submitted.state != "submitted":
        raise StepFailed(f"the P30 is {submitted.state}, not submitted to the access team")
    return await d.ok(ActionP30(user_id=submitted.user_id, p30_id=submitted.p30_id), by, outcome)


async def absence_access(d: Driver, a: Access) -> str:
    submitted = await d.ok(
        RequestAbsenceAccess(
            user_id=TL_ENF_1.user_id,
            unit_ids=["team-enf-2"],
            reason="Standing cover for Enforcement team 2",
            discussion_held=True,
            discussed_with=TL_ENF_2.user_id,
        ),
        SM_ENF,
        P30Recorded,
    )
    granted = await actioned(d, submitted, FLLS_1, AccessGrantRecorded)
    expect(granted.kind == AccessKind.ABSENCE, f"kind {granted.kind}")
    expect(granted.review_due_at is not None, "no six-monthly review date")
    await d.read(
        TL_ENF_1,
        "access",
        "/me/positions",
        lambda b: granted.position_id in {s["position_id"] for s in b["secondary"]},
        "the absence-related position",
    )
    await d.notified(TL_ENF_1.user_id, "NT06", position_id=granted.position_id)
    return (
        f"asked by sm-enf, approved by tl-enf-2, actioned by flls-1 (AC20): tl-enf-1 holds "
        f"{granted.position_id}, review due {granted.review_due_at:%Y-%m-%d} (AC06-AC09)"
    )


async def emergency_access(d: Driver, a: Access) -> str:
    requested = await d.ok(
        RequestEmergencyAbsenceAccess(
            user_id=TL_ENF_2.user_id,
            unit_id="team-enf-1",
            absent_user_id=TL_ENF_1.user_id,
            reason="Team leader unexpectedly absent",
        ),
        SM_ENF,
        EmergencyAccessRequested,
    )
    started = time.perf_counter()
    granted = await d.ok(
        AnswerEmergencyRequest(user_id=TL_ENF_2.user_id, p30_id=requested.p30_id),
        FLLS_1,
        EmergencyAccessGranted,
    )
    took = (time.perf_counter() - started) * 1000
    a.emergency_p30 = granted.p30_id
    a.emergency_position = granted.position_id
    await d.read(
        SM_ENF,
        "access",
        "/p30s/outstanding",
        lambda b: str(granted.p30_id) in {o["p30_id"] for o in b["outstanding"]},
        "the P30 flagged outstanding",
    )
    await d.notified(TL_ENF_2.user_id, "NT04", position_id=granted.position_id)
    await d.notified(SM_ENF.user_id, "NT04", position_id=granted.position_id)
    return (
        f"nobody else held team-enf-1 (AC21); the access team granted it in {took:.0f} ms, "
        "P30 outstanding (AC11)"
    )


async def emergency_scheduled(d: Driver, a: Access) -> str:
    """AC21: the access team lacks capacity and answers with a time scale; the access scheduler
    makes the grant then, and the requester is told either way."""
    requested = await d.ok(
        RequestEmergencyAbsenceAccess(
            user_id=TL_JUD_REV.user_id,
            unit_id=SPECIAL_CLIENT_TEAM,
            absent_user_id="tl-special-client-1",
            reason="Special client records TL unexpectedly absent",
        ),
        SM_JUD_REV,
        EmergencyAccessRequested,
    )
    grant_at = datetime.now(UTC) + timedelta(seconds=12)  # well after the answer arrives
    scheduled = await d.ok(
        AnswerEmergencyRequest(
            user_id=TL_JUD_REV.user_id, p30_id=requested.p30_id, grant_at=grant_at
        ),
        FLLS_2,
        EmergencyAccessScheduled,
    )
    await d.notified(SM_JUD_REV.user_id, "AC21", user_id=TL_JUD_REV.user_id)
    granted = await d.event(EmergencyAccessGranted, p30_id=requested.p30_id)
    a.scheduled_position = granted.position_id
    await d.notified(SM_JUD_REV.user_id, "NT04", position_id=granted.position_id)
    return (
        f"flls-2 answered with a time scale ({scheduled.grant_at:%H:%M:%S}); the scheduler "
        f"granted {granted.position_id} then, P30 outstanding (AC21, AC11)"
    )


async def p30_lodged(d: Driver, a: Access) -> str:
    p30 = a.emergency_p30
    lodged = await d.ok(
        LodgeP30(
            user_id=TL_ENF_2.user_id,
            p30_id=p30,
            discussion_held=True,
            discussed_with=TL_ENF_1.user_id,
            reason="Team leader unexpectedly absent",
        ),
        SM_ENF,
        P30Lodged,
    )
    await d.read(
        SM_ENF,
        "access",
        "/p30s/outstanding",
        lambda b: str(p30) not in {o["p30_id"] for o in b["outstanding"]},
        "the P30 no longer outstanding",
    )
    return f"P30 lodged{' late' if lodged.late else ''}; no longer outstanding (AC04, AC11)"


async def hierarchical_access(d: Driver, a: Access) -> str:
    submitted = await d.ok(
        RequestHierarchicalAccess(
            user_id=CW_ENF_1.user_id,
            unit_ids=[APPEALS_TEAM],
            agreed_with=TL_APPEALS.user_id,
            reason="Appeals needs enforcement casework completed",
        ),
        TL_ENF_1,
        P30Recorded,
    )
    granted = await actioned(d, submitted, FLLS_2, AccessGrantRecorded)
    expect(granted.kind == AccessKind.HIERARCHICAL, f"kind {granted.kind}")
    a.appeals_position = granted.position_id
    await d.read(
        TL_APPEALS,
        "allocation",
        f"/teams/{APPEALS_TEAM}",
        lambda b: granted.position_id in {m["position_id"] for m in b["workers"]},
        "allocation knows the Appeals position",
    )
    await d.notified(CW_ENF_1.user_id, "NT06", position_id=granted.position_id)
    return f"cw-enf-1 holds {granted.position_id} (AC12-AC14)"


async def appeals_intake(d: Driver, a: Access) -> str:
    """A customer's appeal enters the Appeals team's hopper (AC19)."""
    person = f"P-{uuid.uuid4().hex[:8]}"
    item = await d.ok(
        ReceiveServiceRequest(
            person_id=person,
            person_name="Agency Customer",
            unit_id=APPEALS_TEAM,
            description="Appeal lodged",
        ),
        TL_APPEALS,
        WorkItemCreated,
    )
    expect((item.owner_kind, item.owner_id) == ("hopper", APPEALS_HOPPER), f"in {item.owner_id}")
    a.appeals_item, a.appeals_person = item.work_item_id, person
    return f"service request {item.work_item_id} waits in {APPEALS_HOPPER} (AC19)"


async def appeals_work_assigned(d: Driver, a: Access) -> str:
    position = a.appeals_position
    assigned = await d.ok(
        AssignWork(
            person_id=a.appeals_person,
            work_item_id=a.appeals_item,
            to_position_id=position,
            note="Please work this appeal",
        ),
        TL_APPEALS,
        WorkItemAssigned,
    )
    expect(assigned.item.owner_id == position, f"with {assigned.item.owner_id}")
    await d.notified(CW_ENF_1.user_id, "NT01", work_item_id=a.appeals_item)
    await d.ok(
        ChangePosition(user_id=CW_ENF_1.user_id, position_id=position),
        CW_ENF_1,
        CurrentPositionChanged,
    )
    await d.read(
        CW_ENF_1,
        "access",
        "/me/my-service-requests",
        lambda b: str(a.appeals_item) in {i["work_item_id"] for i in b["items"]},
        "the item in cw-enf-1's service requests in the Appeals position",
    )
    return "tl-appeals-1 passes it to cw-enf-1's Appeals position (AC17, AC18)"


async def hierarchical_removed(d: Driver, a: Access) -> str:
    position = a.appeals_position
    submitted = await d.ok(
        RequestAccessRemoval(
            user_id=CW_ENF_1.user_id,
            position_id=position,
            kind=AccessKind.HIERARCHICAL,
            reason="Appeals work completed",
        ),
        SM_ENF,
        P30Recorded,
    )
    requested = await actioned(d, submitted, FLLS_1, PositionReleaseRequested)
    released = await d.event(PositionWorkReleased, release_id=requested.release_id)
    moved = {(str(m.work_item_id), m.to_owner.id) for m in released.moved}
    expect((str(a.appeals_item), APPEALS_HOPPER) in moved, f"moved {moved}")
    await d.event(PositionRevoked, position_id=position)
    await d.read(
        TL_APPEALS,
        "allocation",
        f"/queues/hopper/{APPEALS_HOPPER}/work",
        lambda b: str(a.appeals_item) in items(b, "incoming_work", "incomplete_work"),
        "the item back in the Appeals hopper",
    )
    await d.read(
        TL_APPEALS,
        "allocation",
        f"/workers/{position}/work",
        lambda b: not items(b, "incoming_work", "incomplete_work"),
        "nothing left on the removed position",
    )
    await d.read(
        CW_ENF_1,
        "access",
        "/me/positions",
        lambda b: b["secondary"] == [],
        "the Appeals position gone",
    )

    def trail(body: Any) -> list[tuple[str, str]]:
        return [
            (p["action"], p["state"])
            for p in body["p30s"]
            if p["kind"] == AccessKind.HIERARCHICAL and APPEALS_TEAM in p["unit_ids"]
        ]

    await d.read(
        CW_ENF_1,
        "access",
        "/me/p30s",
        lambda b: trail(b)[-2:] == [("set-up", "complete"), ("removal", "complete")],
        "the Appeals access's P30 set-up and removal records, both complete",
    )
    await d.notified(CW_ENF_1.user_id, "NT06", position_id=position, access_kind="hierarchical")
    return (
        f"removed by the line manager (AC15); {len(released.moved)} item(s) back to "
        f"{APPEALS_HOPPER} first, then the access went (AC16); P30 set-up and removal "
        "records complete (AC04)"
    )


async def emergency_removed(d: Driver, a: Access) -> str:
    """The absent team leaders are back: both emergency accesses are removed through a P30 the
    access team actions (AC20) and the release of work (AC16), so that nobody but them holds
    their teams again (AC21)."""
    removals = [
        (TL_ENF_2, SM_ENF, a.emergency_position, TL_ENF_1),
        (TL_JUD_REV, SM_JUD_REV, a.scheduled_position, None),
    ]
    for user, requester, position, approver in removals:
        submitted = await d.ok(
            RequestAccessRemoval(
                user_id=user.user_id,
                position_id=position,
                kind=AccessKind.ABSENCE,
                reason="Team leader back",
                discussion_held=True,
                discussed_with=approver.user_id if approver else None,
            ),
            requester,
            P30Recorded,
        )
        await actioned(d, submitted, FLLS_2, PositionReleaseRequested)
        await d.event(PositionRevoked, position_id=position)
    return "both emergency accesses removed when actioned by flls-2 (AC20, AC16)"


AGENCY = Procedure(
    "Secondary access",
    Access,
    [
        ("standing absence-related access", absence_access),
        ("emergency access granted at once by the access team", emergency_access),
        ("the P30 arrives later", p30_lodged),
        ("emergency access answered with a time scale", emergency_scheduled),
        ("hierarchical access to Appeals", hierarchical_access),
        ("Appeals work in the team hopper", appeals_intake),
        ("Appeals work passed to the caseworker", appeals_work_assigned),
        ("hierarchical access removed", hierarchical_removed),
        ("emergency accesses removed", emergency_removed),
    ],
)
