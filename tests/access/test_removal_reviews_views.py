"""The removal saga with allocation's answers published as allocation would (AC16), six-monthly
reviews and emergency P30 deadlines driven by an explicit clock (AC09, AC11), position
switching and the work views (AC05, AC17-AC19).

Allocation's answers are simulated here, so this module runs its own access service on a broker
and database of its own: a real allocation service elsewhere in the session must not answer
first."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from contracts.access import (
    AbsenceAccessReviewed,
    AbsenceReviewDue,
    AbsenceReviewLapsed,
    AbsenceReviewOverdue,
    AccessGrantRecorded,
    AccessKind,
    AnswerEmergencyRequest,
    ChangePosition,
    CurrentPositionChanged,
    EmergencyAccessGranted,
    EmergencyAccessRequested,
    EmergencyAccessScheduled,
    EmergencyP30Overdue,
    P30Recorded,
    PositionGranted,
    PositionReleaseRequested,
    PositionRemovalFailed,
    PositionRevoked,
    RequestAccessRemoval,
    RequestEmergencyAbsenceAccess,
    ReviewAbsenceAccess,
)
from contracts.allocation import (
    Owner,
    PositionWorkReleasedV2,
    PositionWorkReleaseFailed,
    StepType,
    WorkItemAssignedV2,
    WorkItemSnapshot,
    WorkState,
)
from deploy.identity import SignedInUsers
from services.access import domain, scheduler, store
from services.shared import working_days
from services.shared.auth import SigningKey
from services.shared.settings import Settings
from tests.access.conftest import AccessService, Org, eventually
from tests.access.test_secondary_access import absence, hierarchical, positions, rejected
from tests.support.client import CommandClient, EventLog, clients_on
from tests.support.infra import Infra, isolated_infrastructure


@pytest.fixture(scope="module")
def own_infra(infra: Infra) -> Iterator[tuple[str, str]]:
    with isolated_infrastructure(infra, "access_saga") as found:
        yield found


@pytest.fixture(scope="module")
async def access(
    own_infra: tuple[str, str], settings_for: Callable[..., Settings], users: SignedInUsers
) -> AsyncIterator[AccessService]:
    bootstrap, database_url = own_infra
    service = AccessService(
        settings_for("access", kafka_bootstrap_servers=bootstrap, database_url=database_url),
        users,
    )
    await service.start()
    yield service
    await service.stop()


@pytest.fixture(scope="module")
async def own_clients(
    own_infra: tuple[str, str],
    settings_for: Callable[..., Settings],
    edge_key: SigningKey,
    users: SignedInUsers,
) -> AsyncIterator[tuple[CommandClient, EventLog]]:
    settings = settings_for(
        "edge", kafka_bootstrap_servers=own_infra[0], assertion_signing_key=edge_key.dumps()
    )
    async with clients_on(own_infra[0], settings, users) as clients:
        yield clients


@pytest.fixture
async def org(access: AccessService, own_clients: tuple[CommandClient, EventLog]) -> Org:
    return await Org(*own_clients).load()


async def _hierarchical_to_appeals(org: Org, user: str = "cw-1") -> str:
    ok = await org.granted(hierarchical(org, user, "team-appeals"), "tl-enf-1")
    return str(ok.one(AccessGrantRecorded).position_id)


async def _request_removal(org: Org, position_id: str, user: str = "cw-1") -> Any:
    """The removal P30 submitted and actioned by the access team (AC20); a failed release is
    asked for again at once, under its P30 (AC16)."""
    outcome = await org.send(
        RequestAccessRemoval(
            user_id=org.id(user),
            position_id=position_id,
            kind=AccessKind.HIERARCHICAL,
            reason="appeals work done",
        ),
        "sm-enf",
    )
    assert outcome.rejection is None, outcome.rejection
    if not outcome.of(PositionReleaseRequested):
        assert outcome.of(PositionReleaseRequested) == []  # nothing removed before it is actioned
        outcome = await org.action(outcome, wait_for=PositionReleaseRequested)
    return outcome.one(PositionReleaseRequested)


def _caused(org: Org, envelope_id: uuid.UUID, model: type[Any]) -> Any:
    return [
        model.model_validate(e.payload)
        for e in org.event_log.caused_by(envelope_id)
        if e.type == model.TYPE
    ]


async def test_ac16_access_goes_only_after_allocation_released_the_work(
    access: AccessService, org: Org
) -> None:
    position_id = await _hierarchical_to_appeals(org)
    release = await _request_removal(org, position_id)
    view = await positions(access, org, "cw-1")
    assert view["secondary"][0]["state"] == "removal_pending"  # access stays until released
    p30s = (await access.get(org.id("cw-1"), "/me/p30s")).json()["p30s"]
    assert [(p["action"], p["state"]) for p in p30s] == [
        ("set-up", "complete"),
        ("removal", "pending"),
    ]

    item = WorkItemSnapshot(
        work_item_id=uuid.uuid4(),
        person_id="P-1",
        step_type=StepType.SERVICE_REQUEST,
        state=WorkState.INCOMING,
        owner_kind="hopper",
        owner_id="h",
        priority="normal",
    )
    answer = await org.answer(
        PositionWorkReleasedV2(
            release_id=release.release_id,
            user_id=org.id("cw-1"),
            position_id=position_id,
            items=[item],
            from_owners=[Owner(kind="worker", id=position_id)],
        )
    )
    (revoked,) = await org.event_log.wait_for(
        lambda: _caused(org, answer.message_id, PositionRevoked)
    )
    assert revoked.position_id == position_id
    assert revoked.p30_id == uuid.UUID(p30s[1]["p30_id"])
    assert (await positions(access, org, "cw-1"))["secondary"] == []
    p30s = (await access.get(org.id("cw-1"), "/me/p30s")).json()["p30s"]
    assert p30s[1]["state"] == "complete"
    (removal,) = (await access.get(org.id("cw-1"), "/me/removals")).json()["removals"]
    assert removal["state"] == "released" and removal["moved"][0]["work_item_id"] == str(
        item.work_item_id
    )


async def test_ac16_failed_release_stays_pending_with_the_reason_and_access_kept(
    access: AccessService, org: Org
) -> None:
    position_id = await _hierarchical_to_appeals(org)
    release = await _request_removal(org, position_id)
    answer = await org.answer(
        PositionWorkReleaseFailed(
            release_id=release.release_id,
            user_id=org.id("cw-1"),
            position_id=position_id,
            reason="AC16: successor position is not active",
        )
    )
    (failed,) = await org.event_log.wait_for(
        lambda: _caused(org, answer.message_id, PositionRemovalFailed)
    )
    assert "successor" in failed.reason
    (removal,) = (await access.get(org.id("cw-1"), "/me/removals")).json()["removals"]
    assert removal["state"] == "failed" and "successor" in removal["reason"]
    p30 = (await access.get(org.id("cw-1"), "/me/p30s")).json()["p30s"][1]
    assert p30["state"] == "pending" and "successor" in p30["failure_reason"]
    (held,) = (await positions(access, org, "cw-1"))["secondary"]
    assert (held["position_id"], held["state"]) == (position_id, "removal_pending")
    # It cannot be re-granted while its removal is pending.
    regrant = await org.send(hierarchical(org, "cw-1", "team-appeals"), "tl-enf-1")
    rejected(regrant, "AC16")
    # Asking again retries the release under the same pending P30; only one release at a time.
    retry = await _request_removal(org, position_id)
    assert retry.release_id != release.release_id
    again = await org.send(
        RequestAccessRemoval(
            user_id=org.id("cw-1"), position_id=position_id, kind=AccessKind.HIERARCHICAL
        ),
        "sm-enf",
    )
    assert "already being removed" in rejected(again, "AC16")
    late = await org.answer(
        PositionWorkReleasedV2(
            release_id=release.release_id,
            user_id=org.id("cw-1"),
            position_id=position_id,
            items=[],
            from_owners=[],
        )
    )  # an answer to the failed attempt changes nothing
    done = await org.answer(
        PositionWorkReleasedV2(
            release_id=retry.release_id,
            user_id=org.id("cw-1"),
            position_id=position_id,
            items=[],
            from_owners=[],
        )
    )
    await org.event_log.wait_for(lambda: _caused(org, done.message_id, PositionRevoked))
    assert _caused(org, late.message_id, PositionRevoked) == []
    p30s = (await access.get(org.id("cw-1"), "/me/p30s")).json()["p30s"]
    assert [(p["action"], p["state"], p["failure_reason"]) for p in p30s] == [
        ("set-up", "complete", None),
        ("removal", "complete", None),
    ]


async def test_ac16_saga_survives_a_restart_and_completes_exactly_once(
    access: AccessService, org: Org
) -> None:
    """The access service is stopped after asking for the release; allocation's answer (and a
    redelivered copy, and a second answer for the same release) arrive while it is down."""
    position_id = await _hierarchical_to_appeals(org)
    release = await _request_removal(org, position_id)
    await access.stop()
    try:
        released = PositionWorkReleasedV2(
            release_id=release.release_id,
            user_id=org.id("cw-1"),
            position_id=position_id,
            items=[],
            from_owners=[],
        )
        first = await org.answer(released)
        await org.commands.send_raw(
            "allocation.events", first.model_dump_json().encode(), key=released.key()
        )  # the same message delivered twice
        second = await org.answer(released)  # a second answer for the same release
    finally:
        await access.start()
    await org.event_log.wait_for(lambda: _caused(org, first.message_id, PositionRevoked))

    async def applied() -> bool:
        async with access.runtime.engine.connect() as conn:
            seen = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(store.inbox)
                .where(store.inbox.c.message_id.in_([first.message_id, second.message_id]))
            )
        return seen == 2

    await eventually(applied)
    # A later event for the same user comes after anything the duplicates could have caused.
    marker = await org.send(
        ChangePosition(user_id=org.id("cw-1"), position_id=org.pos("cw-1")),
        "cw-1",
        wait_for=CurrentPositionChanged,
    )
    assert marker.rejection is None
    revoked = [
        e
        for e in org.event_log.envelopes()
        if e.type == PositionRevoked.TYPE and e.payload["position_id"] == position_id
    ]
    assert len(revoked) == 1
    p30s = (await access.get(org.id("cw-1"), "/me/p30s")).json()["p30s"]
    assert [(p["action"], p["state"]) for p in p30s] == [
        ("set-up", "complete"),
        ("removal", "complete"),
    ]


async def test_ac09_review_flagged_before_due_escalated_when_overdue_and_confirm_renews(
    access: AccessService, org: Org
) -> None:
    granted = await org.granted(absence(org, "tl-enf-2", "team-enf-1"), "sm-enf")
    grant = granted.one(AccessGrantRecorded)
    assert grant.review_due_at is not None
    expected = domain.review_due(granted.sent.occurred_at)
    assert abs(grant.review_due_at - expected) < timedelta(minutes=1)  # six months on
    due_at = grant.review_due_at
    assert due_at is not None

    def flagged(model: type[Any]) -> list[Any]:
        return [
            model.model_validate(e.payload)
            for e in org.event_log.envelopes()
            if e.type == model.TYPE and e.payload["grant_id"] == str(grant.grant_id)
        ]

    # DL03: flagged from ten working days before: not thirty days before, but five days before.
    async with access.runtime.transaction(now=due_at - timedelta(days=30)) as work:
        await scheduler.scan(work)
    assert flagged(AbsenceReviewDue) == []
    async with access.runtime.transaction(now=due_at - timedelta(days=5)) as work:
        await scheduler.scan(work)
    async with access.runtime.transaction(now=due_at - timedelta(days=4)) as work:
        await scheduler.scan(work)  # flagged once only
    (due,) = await org.event_log.wait_for(lambda: flagged(AbsenceReviewDue))
    assert due.responsible == [org.id("director"), org.id("sm-enf")]
    listed = (await access.get(org.id("sm-enf"), "/reviews/due", at=due_at.isoformat())).json()
    assert str(grant.grant_id) in {r["grant_id"] for r in listed["reviews"]}

    async with access.runtime.transaction(now=due_at + timedelta(days=1)) as work:
        await scheduler.scan(work)
    (overdue,) = await org.event_log.wait_for(lambda: flagged(AbsenceReviewOverdue))
    assert overdue.escalate_to == [org.id("director")]  # sm-enf's line manager
    assert len(flagged(AbsenceReviewDue)) == 1

    # Only the responsible TL/SM reviews; confirming sets the next review six months on.
    wrong = await org.send(
        ReviewAbsenceAccess(user_id=org.id("tl-enf-2"), grant_id=grant.grant_id, confirm=True),
        "tl-appeals",
    )
    rejected(wrong, "AC09")
    reviewed = await org.send(
        ReviewAbsenceAccess(user_id=org.id("tl-enf-2"), grant_id=grant.grant_id, confirm=True),
        "sm-enf",
        wait_for=AbsenceAccessReviewed,
    )
    confirmed = reviewed.one(AbsenceAccessReviewed)
    assert confirmed.confirmed and confirmed.next_review_due_at is not None
    assert confirmed.next_review_due_at > due_at
    view = await positions(access, org, "tl-enf-2")
    assert view["secondary"][0]["records"][0]["review_due_at"] == (
        confirmed.next_review_due_at.isoformat()
    )


async def test_ac09_ac20_review_that_removes_goes_to_the_access_team_then_the_release_saga(
    access: AccessService, org: Org
) -> None:
    granted = await org.granted(absence(org, "tl-enf-2", "team-enf-1"), "sm-enf")
    grant = granted.one(AccessGrantRecorded)
    reviewed = await org.send(
        ReviewAbsenceAccess(
            user_id=org.id("tl-enf-2"), grant_id=grant.grant_id, confirm=False, reason="no longer"
        ),
        "sm-enf",
        wait_for=AbsenceAccessReviewed,
    )
    p30 = reviewed.one(P30Recorded)
    assert (p30.action, p30.state) == ("removal", "submitted")
    assert reviewed.of(PositionReleaseRequested) == []
    outcome = await org.action(reviewed, "flls-2", wait_for=PositionReleaseRequested)
    assert outcome.one(PositionReleaseRequested).position_id == grant.position_id
    view = await positions(access, org, "tl-enf-2")
    assert view["secondary"][0]["state"] == "removal_pending"


async def test_ac11_emergency_p30_past_its_deadline_is_flagged_overdue(
    access: AccessService, org: Org
) -> None:
    outcome = await _emergency_granted(org)
    emergency = outcome.one(EmergencyAccessGranted)

    def overdue() -> list[EmergencyP30Overdue]:
        return [
            EmergencyP30Overdue.model_validate(e.payload)
            for e in org.event_log.envelopes()
            if e.type == EmergencyP30Overdue.TYPE and e.payload["p30_id"] == str(emergency.p30_id)
        ]

    async with access.runtime.transaction(now=emergency.p30_deadline - timedelta(hours=1)) as w:
        await scheduler.scan(w)
    async with access.runtime.transaction(now=emergency.p30_deadline + timedelta(hours=1)) as w:
        await scheduler.scan(w)
    (flag,) = await org.event_log.wait_for(overdue)
    assert flag.requested_by == org.id("sm-enf") and flag.escalate_to == org.id("director")
    outstanding = (await access.get(org.id("sm-enf"), "/p30s/outstanding")).json()["outstanding"]
    (record,) = [o for o in outstanding if o["p30_id"] == str(emergency.p30_id)]
    assert record["overdue_flagged"] is True


async def _emergency_requested(org: Org, user: str = "tl-enf-2") -> Any:
    """AC21: tl-enf-1 is absent and nobody else holds team 1: sm-enf calls the access team."""
    outcome = await org.send(
        RequestEmergencyAbsenceAccess(
            user_id=org.id(user),
            unit_id=org.id("team-enf-1"),
            absent_user_id=org.id("tl-enf-1"),
            reason="TL off sick, cases due",
        ),
        "sm-enf",
        wait_for=EmergencyAccessRequested,
    )
    assert outcome.rejection is None, outcome.rejection
    return outcome.one(EmergencyAccessRequested)


async def _emergency_granted(org: Org, user: str = "tl-enf-2") -> Any:
    requested = await _emergency_requested(org, user)
    return await org.send(
        AnswerEmergencyRequest(user_id=requested.user_id, p30_id=requested.p30_id),
        "flls-1",
        wait_for=EmergencyAccessGranted,
    )


async def _assign(org: Org, position_id: str, person: str, owner_unit: str) -> uuid.UUID:
    """Publishes what allocation publishes when it passes an item to a worker position."""
    work_item_id = uuid.uuid4()
    await org.answer(
        WorkItemAssignedV2(
            person_id=person,
            items=[
                WorkItemSnapshot(
                    work_item_id=work_item_id,
                    person_id=person,
                    step_type=StepType.CASE_MONITORING,
                    state=WorkState.INCOMING,
                    owner_kind="worker",
                    owner_id=position_id,
                    owner_unit_id=owner_unit,
                    priority="normal",
                )
            ],
            from_owners=[Owner(kind="hopper", id="hopper")],
        )
    )
    return work_item_id


async def test_ac17_ac18_views_follow_the_current_position_and_list_view_is_read_only(
    access: AccessService, org: Org
) -> None:
    appeals = await _hierarchical_to_appeals(org)
    at_home = await _assign(org, org.pos("cw-1"), "P-home", org.id("team-enf-1"))
    at_appeals = await _assign(org, appeals, "P-appeals", org.id("team-appeals"))
    user = org.id("cw-1")

    async def listed() -> set[str]:
        items = (await access.get(user, "/me/segment-list")).json()["items"]
        return {i["work_item_id"] for i in items} if len(items) == 2 else set()

    assert await eventually(listed) == {str(at_home), str(at_appeals)}
    mine = (await access.get(user, "/me/my-service-requests")).json()
    assert mine["position_id"] == org.pos("cw-1")
    assert [i["work_item_id"] for i in mine["items"]] == [str(at_home)]

    switched = await org.send(
        ChangePosition(user_id=user, position_id=appeals), "cw-1", wait_for=CurrentPositionChanged
    )
    assert switched.one(CurrentPositionChanged).previous_position_id == org.pos("cw-1")
    mine = (await access.get(user, "/me/my-service-requests")).json()
    assert mine["position_id"] == appeals
    assert [i["work_item_id"] for i in mine["items"]] == [str(at_appeals)]
    assert (await positions(access, org, "cw-1"))["current_position_id"] == appeals

    segment_list = (await access.get(user, "/me/segment-list")).json()
    assert segment_list["read_only"] is True
    refused = await access.post(user, f"/me/segment-list/{at_appeals}/complete", {})
    assert refused.status_code == 409 and refused.json()["rule"] == "AC18"


async def test_ac17_only_the_user_switches_and_only_to_a_held_position(org: Org) -> None:
    appeals = await _hierarchical_to_appeals(org)
    other = await org.send(ChangePosition(user_id=org.id("cw-1"), position_id=appeals), "cw-2")
    rejected(other, "AC17")
    unheld = await org.send(
        ChangePosition(user_id=org.id("cw-1"), position_id=org.pos("tl-appeals")), "cw-1"
    )
    rejected(unheld, "AC17")


async def test_ac05_telephony_routes_on_the_primary_position_only(
    access: AccessService, org: Org
) -> None:
    appeals = await _hierarchical_to_appeals(org)
    await org.send(
        ChangePosition(user_id=org.id("cw-1"), position_id=appeals),
        "cw-1",
        wait_for=CurrentPositionChanged,
    )
    routed = (await access.get(org.id("cw-1"), "/me/telephony")).json()
    assert routed == {
        "user_id": org.id("cw-1"),
        "position_id": org.pos("cw-1"),
        "unit_id": org.id("team-enf-1"),
    }


async def test_ac19_absence_access_shows_the_accessed_teams_caseworkers_and_work_only(
    access: AccessService, org: Org
) -> None:
    granted = await org.granted(absence(org, "tl-enf-2", "team-enf-1"), "sm-enf")
    position_id = granted.one(AccessGrantRecorded).position_id
    in_team_1 = await _assign(org, org.pos("cw-1"), "P-t1", org.id("team-enf-1"))
    await _assign(org, org.pos("cw-appeals"), "P-other", org.id("team-appeals"))
    await org.send(
        ChangePosition(user_id=org.id("tl-enf-2"), position_id=position_id),
        "tl-enf-2",
        wait_for=CurrentPositionChanged,
    )

    async def view() -> dict[str, Any]:
        body = (await access.get(org.id("tl-enf-2"), "/me/team-view")).json()
        return body if body["items"] else {}

    body = await eventually(view)
    assert body["unit_id"] == org.id("team-enf-1")
    assert {c["user_id"] for c in body["caseworkers"]} == {org.id("cw-1"), org.id("cw-2")}
    assert [i["work_item_id"] for i in body["items"]] == [str(in_team_1)]


async def test_ac21_emergency_answered_with_a_time_scale_is_granted_by_the_scheduler_then(
    access: AccessService, org: Org
) -> None:
    requested = await _emergency_requested(org)
    answer = await org.send(
        AnswerEmergencyRequest(
            user_id=requested.user_id,
            p30_id=requested.p30_id,
            grant_at=datetime.now(UTC) + timedelta(hours=3),
        ),
        "flls-1",
        wait_for=EmergencyAccessScheduled,
    )
    scheduled = answer.one(EmergencyAccessScheduled)
    assert (scheduled.requested_by, scheduled.answered_by) == (org.id("sm-enf"), org.id("flls-1"))
    assert answer.of(PositionGranted) == []  # the access team lacks capacity: not yet
    assert (await positions(access, org, "tl-enf-2"))["secondary"] == []

    def granted() -> list[EmergencyAccessGranted]:
        return [
            EmergencyAccessGranted.model_validate(e.payload)
            for e in org.event_log.envelopes()
            if e.type == EmergencyAccessGranted.TYPE
            and e.payload["p30_id"] == str(requested.p30_id)
        ]

    async with access.runtime.transaction(now=scheduled.grant_at - timedelta(minutes=1)) as w:
        await scheduler.scan(w)
    assert granted() == []
    async with access.runtime.transaction(now=scheduled.grant_at) as w:
        await scheduler.scan(w)
    (made,) = await org.event_log.wait_for(granted)
    assert made.actioned_by == org.id("flls-1")  # as the access team answered
    assert made.p30_deadline == domain.p30_deadline(scheduled.grant_at)  # DL03, from the grant
    (secondary,) = (await positions(access, org, "tl-enf-2"))["secondary"]
    assert secondary["records"][0]["p30_state"] == "outstanding"  # the P30 is still required
    async with access.runtime.transaction(now=scheduled.grant_at + timedelta(hours=1)) as w:
        await scheduler.scan(w)
    assert len(granted()) == 1  # made once


async def test_ac21_emergency_refused_while_someone_holds_the_absent_tls_unit(
    access: AccessService, org: Org
) -> None:
    standing = await org.granted(absence(org, "tl-enf-3", "team-enf-1"), "sm-enf")
    assert standing.rejection is None
    outcome = await org.send(
        RequestEmergencyAbsenceAccess(
            user_id=org.id("tl-enf-2"),
            unit_id=org.id("team-enf-1"),
            absent_user_id=org.id("tl-enf-1"),
        ),
        "sm-enf",
    )
    assert org.id("tl-enf-3") in rejected(outcome, "AC21")
    # Nor for a unit the named absent user is not a team leader of.
    elsewhere = await org.send(
        RequestEmergencyAbsenceAccess(
            user_id=org.id("tl-enf-2"),
            unit_id=org.id("team-enf-4"),
            absent_user_id=org.id("tl-enf-1"),
        ),
        "sm-enf",
    )
    rejected(elsewhere, "AC21")
    p30s = (await access.get(org.id("tl-enf-2"), "/me/p30s")).json()["p30s"]
    assert p30s == []


async def test_ac21_only_the_access_team_answers_an_emergency_request(org: Org) -> None:
    requested = await _emergency_requested(org)
    answer = AnswerEmergencyRequest(user_id=requested.user_id, p30_id=requested.p30_id)
    for who in ("sm-enf", "tl-enf-2", "director"):
        rejected(await org.send(answer, who), "AC21")
    ok = await org.send(answer, "flls-2", wait_for=EmergencyAccessGranted)
    assert ok.one(EmergencyAccessGranted).actioned_by == org.id("flls-2")
    # one transaction: the position, its record and the outstanding P30 came with the answer
    assert ok.one(PositionGranted).emergency and ok.one(AccessGrantRecorded).emergency
    rejected(await org.send(answer, "flls-1"), "AC21")  # answered once


async def test_ac22_unanswered_review_removed_after_the_grace_period_under_the_remove_policy(
    access: AccessService, org: Org
) -> None:
    granted = await org.granted(absence(org, "tl-enf-2", "team-enf-1"), "sm-enf")
    grant = granted.one(AccessGrantRecorded)
    due_at = grant.review_due_at
    assert due_at is not None
    remove = scheduler.ReviewPolicy(
        overdue_review_policy=domain.OverdueReviewPolicy.REMOVE,
        overdue_review_grace_working_days=5,
    )
    escalate = scheduler.ReviewPolicy()  # the default: escalate only
    assert escalate.overdue_review_policy is domain.OverdueReviewPolicy.ESCALATE
    end_of_grace = working_days.due_at(due_at, 5)

    def lapsed() -> list[AbsenceReviewLapsed]:
        return [
            AbsenceReviewLapsed.model_validate(e.payload)
            for e in org.event_log.envelopes()
            if e.type == AbsenceReviewLapsed.TYPE and e.payload["grant_id"] == str(grant.grant_id)
        ]

    async with access.runtime.transaction(now=due_at + timedelta(seconds=1)) as work:
        await scheduler.scan(work, remove)  # escalated (AC09), not yet removed
    async with access.runtime.transaction(now=end_of_grace + timedelta(days=400)) as work:
        await scheduler.scan(work, escalate)  # escalate policy: never removed, never renewed
    async with access.runtime.transaction(now=end_of_grace - timedelta(seconds=1)) as work:
        await scheduler.scan(work, remove)
    assert lapsed() == []
    (secondary,) = (await positions(access, org, "tl-enf-2"))["secondary"]
    assert secondary["state"] == "active"
    assert secondary["records"][0]["review_due_at"] == due_at.isoformat()  # not renewed

    async with access.runtime.transaction(now=end_of_grace) as work:
        await scheduler.scan(work, remove)
    (lapse,) = await org.event_log.wait_for(lapsed)
    release = await org.event_log.wait_for(
        lambda: [
            PositionReleaseRequested.model_validate(e.payload)
            for e in org.event_log.envelopes()
            if e.type == PositionReleaseRequested.TYPE
            and e.payload["position_id"] == grant.position_id
        ]
    )
    p30s = (await access.get(org.id("tl-enf-2"), "/me/p30s")).json()["p30s"]
    removal = next(p for p in p30s if p["p30_id"] == str(lapse.p30_id))
    assert (removal["action"], removal["state"]) == ("removal", "pending")
    assert "AC22" in removal["reason"]
    # The same release of work as any removal (AC16): the access goes when allocation answers.
    answer = await org.answer(
        PositionWorkReleasedV2(
            release_id=release[0].release_id,
            user_id=org.id("tl-enf-2"),
            position_id=grant.position_id,
            items=[],
            from_owners=[],
        )
    )
    await org.event_log.wait_for(lambda: _caused(org, answer.message_id, PositionRevoked))
    assert (await positions(access, org, "tl-enf-2"))["secondary"] == []
    async with access.runtime.transaction(now=end_of_grace + timedelta(days=1)) as work:
        await scheduler.scan(work, remove)
    assert len(lapsed()) == 1
