"""Secondary access over the real broker and database: the directory, limits (AC01, AC02, AC10),
P30 records (AC04) actioned by the access team (AC20), absence-related (AC06-AC09, AC11, AC21)
and hierarchical access (AC12-AC15)."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts.access import (
    AccessGrantEnded,
    AccessGrantRecorded,
    AccessKind,
    ActionP30,
    AnswerEmergencyRequest,
    EmergencyAccessGranted,
    EmergencyAccessRequested,
    LodgeP30,
    P30Actioned,
    P30Lodged,
    P30Recorded,
    P30Refused,
    PositionGranted,
    PositionReleaseRequested,
    RefuseP30,
    RequestAbsenceAccess,
    RequestAccessRemoval,
    RequestEmergencyAbsenceAccess,
    RequestHierarchicalAccess,
    UnitDefined,
    UserRegistered,
)
from services.access import domain
from tests.access.conftest import AccessService, Org, Outcome


def absence(org: Org, user: str, *teams: str, discussed: bool = True) -> RequestAbsenceAccess:
    return RequestAbsenceAccess(
        user_id=org.id(user),
        unit_ids=[org.id(t) for t in teams],
        reason="standing cover for absence",
        discussion_held=discussed,
        discussed_with=org.id("tl-enf-1"),
    )


def hierarchical(org: Org, user: str, *units: str, agreed: str = "tl-appeals") -> Any:
    return RequestHierarchicalAccess(
        user_id=org.id(user),
        unit_ids=[org.id(u) for u in units],
        agreed_with=org.id(agreed),
        reason="appeals backlog",
    )


def rejected(outcome: Outcome, rule: str) -> str:
    assert outcome.rejection is not None, f"expected a rejection naming {rule}"
    assert outcome.rejection.rule == rule, outcome.rejection
    return outcome.rejection.reason


async def positions(access: AccessService, org: Org, user: str) -> dict[str, Any]:
    response = await access.get(org.id(user), "/me/positions")  # TR05: as that user
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_load_directory_publishes_units_users_and_primary_positions(
    access: AccessService, org: Org
) -> None:
    events = org.event_log.envelopes()
    units = {e.payload["unit_id"]: e.payload for e in events if e.type == UnitDefined.TYPE}
    users = {e.payload["user_id"] for e in events if e.type == UserRegistered.TYPE}
    granted = [e.payload for e in events if e.type == PositionGranted.TYPE]
    assert units[org.id("appeals")]["code"] == "FS_GB_CMEXF_000_APPEALS"
    assert units[org.id("team-appeals")]["parent_id"] == org.id("appeals")
    assert org.id("cw-1") in users
    assert {
        "user_id": org.id("cw-1"),
        "position_id": org.pos("cw-1"),
        "kind": "primary",
    }.items() <= next(g for g in granted if g["user_id"] == org.id("cw-1")).items()
    view = await positions(access, org, "cw-1")
    assert view["primary"]["unit_id"] == org.id("team-enf-1")
    assert view["secondary"] == []


async def test_ac04_ac08_ac20_absence_p30_submitted_then_granted_when_the_access_team_actions(
    access: AccessService, org: Org
) -> None:
    submitted = await org.send(
        absence(org, "tl-enf-2", "team-enf-1"), "sm-enf", wait_for=P30Recorded
    )
    assert submitted.rejection is None
    p30 = submitted.one(P30Recorded)
    assert submitted.of(AccessGrantRecorded) == []  # nothing granted until actioned (AC20)
    assert (p30.action, p30.kind, p30.state) == ("set-up", AccessKind.ABSENCE, "submitted")
    assert p30.requested_by == org.id("sm-enf") and p30.approved_by == org.id("tl-enf-1")
    assert p30.discussion_held and p30.discussed_with == org.id("tl-enf-1")
    assert (await positions(access, org, "tl-enf-2"))["secondary"] == []
    queue = (await access.get(org.id("flls-2"), "/p30s/to-action")).json()["p30s"]
    assert str(p30.p30_id) in {q["p30_id"] for q in queue}

    outcome = await org.action(submitted, "flls-2")
    actioned = outcome.one(P30Actioned)
    grant = outcome.one(AccessGrantRecorded)
    assert grant.p30_id == p30.p30_id
    # AC20: who asked, who approved and who actioned are three different people.
    assert (actioned.requested_by, actioned.approved_by, actioned.actioned_by) == (
        org.id("sm-enf"),
        org.id("tl-enf-1"),
        org.id("flls-2"),
    )
    history = (await access.get(org.id("tl-enf-2"), "/me/p30s")).json()["p30s"]
    assert [(h["p30_id"], h["state"], h["actioned_by"]) for h in history] == [
        (str(p30.p30_id), "complete", org.id("flls-2"))
    ]
    view = await positions(access, org, "tl-enf-2")
    (secondary,) = view["secondary"]
    assert secondary["unit_id"] == org.id("team-enf-1")
    assert secondary["kind"] == "absence-related"
    assert secondary["records"][0]["p30_state"] == "complete"


async def test_ac08_absence_access_needs_the_discussion_recorded(org: Org) -> None:
    outcome = await org.send(absence(org, "tl-enf-2", "team-enf-1", discussed=False), "sm-enf")
    assert "discussion" in rejected(outcome, "AC08")


async def test_ac08_only_primary_tl_sm_of_the_users_primary_segment_adds_absence_access(
    org: Org,
) -> None:
    outcome = await org.send(absence(org, "tl-enf-2", "team-enf-1"), "sm-appeals")
    assert org.id("sm-appeals") in rejected(outcome, "AC08")
    # nor may the user grant it to themselves
    outcome = await org.send(absence(org, "tl-enf-2", "team-enf-1"), "tl-enf-2")
    rejected(outcome, "AC08")


async def test_ac06_absence_access_only_for_team_leaders_and_segment_managers(
    org: Org,
) -> None:
    outcome = await org.send(absence(org, "cw-1", "team-enf-2"), "sm-enf")
    assert "caseworker" in rejected(outcome, "AC07")


async def test_ac07_caseworkers_are_not_given_absence_related_access(org: Org) -> None:
    outcome = await org.send(absence(org, "cw-2", "team-enf-2"), "tl-enf-1")
    assert "team leaders and segment managers" in rejected(outcome, "AC07")


async def test_ac10_several_absence_positions_on_one_p30_up_to_ten(
    access: AccessService, org: Org
) -> None:
    teams = [f"team-enf-{n}" for n in range(3, 12)]  # nine more: ten with the primary
    submitted = await org.send(absence(org, "tl-enf-2", *teams), "sm-enf", wait_for=P30Recorded)
    outcome = await org.action(submitted)
    assert outcome.rejection is None
    await org.event_log.wait_for(
        lambda: (
            len(
                [
                    e
                    for e in org.event_log.caused_by(outcome.sent.message_id)
                    if e.type == AccessGrantRecorded.TYPE
                ]
            )
            == 9
        )
    )
    (p30,) = submitted.of(P30Recorded)
    assert p30.unit_ids == [org.id(t) for t in teams]
    assert len((await positions(access, org, "tl-enf-2"))["secondary"]) == 9


async def test_ac10_one_p30_that_would_exceed_ten_positions_is_refused_whole(
    access: AccessService, org: Org
) -> None:
    teams = [f"team-enf-{n}" for n in range(3, 13)]  # ten more: eleven with the primary
    outcome = await org.send(absence(org, "tl-enf-2", *teams), "sm-enf")
    assert "11 positions" in rejected(outcome, "AC10")
    assert (await positions(access, org, "tl-enf-2"))["secondary"] == []
    assert (await access.get(org.id("tl-enf-2"), "/me/p30s")).json()["p30s"] == []


async def test_ac01_at_most_ten_positions_in_all(access: AccessService, org: Org) -> None:
    teams = [f"team-enf-{n}" for n in range(3, 12)]
    first = await org.granted(absence(org, "tl-enf-2", *teams), "sm-enf")
    assert first.rejection is None
    outcome = await org.send(absence(org, "tl-enf-2", "team-enf-12"), "sm-enf")
    assert "at most 10" in rejected(outcome, "AC01")
    assert len((await positions(access, org, "tl-enf-2"))["secondary"]) == 9


async def test_ac02_more_than_two_positions_needs_security_clearance(
    access: AccessService, org: Org
) -> None:
    ok = await org.granted(absence(org, "tl-enf-3", "team-enf-1"), "sm-enf")
    assert ok.rejection is None
    outcome = await org.send(absence(org, "tl-enf-3", "team-enf-2"), "sm-enf")
    assert "clearance" in rejected(outcome, "AC02")
    hier = await org.granted(hierarchical(org, "cw-2", "team-appeals"), "tl-enf-1")
    assert hier.rejection is None
    second = await org.send(hierarchical(org, "cw-2", "jud-rev", agreed="sm-jud-rev"), "tl-enf-1")
    rejected(second, "AC02")
    assert len((await positions(access, org, "cw-2"))["secondary"]) == 1


def emergency(org: Org, user: str = "tl-enf-2", unit: str = "team-enf-1") -> Any:
    """AC21: tl-enf-1 (team 1's TL) is unexpectedly absent and nobody else holds team 1."""
    return RequestEmergencyAbsenceAccess(
        user_id=org.id(user),
        unit_id=org.id(unit),
        absent_user_id=org.id("tl-enf-1"),
        reason="TL off sick",
    )


async def test_ac11_ac21_emergency_granted_at_once_by_the_access_team_p30_outstanding_until_lodged(
    access: AccessService, org: Org
) -> None:
    requested = await org.send(emergency(org), "sm-enf", wait_for=EmergencyAccessRequested)
    p30 = requested.one(P30Recorded)
    assert (p30.state, p30.emergency) == ("requested", True)
    assert requested.of(PositionGranted) == []
    outcome = await org.send(
        AnswerEmergencyRequest(user_id=org.id("tl-enf-2"), p30_id=p30.p30_id),
        "flls-1",
        wait_for=EmergencyAccessGranted,
    )
    granted = outcome.one(PositionGranted)
    emergency_granted = outcome.one(EmergencyAccessGranted)
    assert granted.emergency and granted.p30_id == p30.p30_id
    assert emergency_granted.requested_by == org.id("sm-enf")
    assert emergency_granted.actioned_by == org.id("flls-1")
    # DL03: due at the close of the second working day after the grant.
    answered_at = next(e for e in outcome.events if e.type == EmergencyAccessGranted.TYPE)
    assert emergency_granted.p30_deadline == domain.p30_deadline(answered_at.occurred_at)
    outstanding = (await access.get(org.id("sm-enf"), "/p30s/outstanding")).json()["outstanding"]
    assert str(p30.p30_id) in {o["p30_id"] for o in outstanding}
    view = await positions(access, org, "tl-enf-2")
    assert view["secondary"][0]["records"][0]["p30_state"] == "outstanding"

    lodged = await org.send(
        LodgeP30(
            user_id=org.id("tl-enf-2"),
            p30_id=p30.p30_id,
            discussion_held=True,
            discussed_with=org.id("tl-enf-1"),
            reason="TL off sick",
        ),
        "sm-enf",
    )
    assert lodged.one(P30Lodged).late is False
    outstanding = (await access.get(org.id("sm-enf"), "/p30s/outstanding")).json()["outstanding"]
    assert str(p30.p30_id) not in {o["p30_id"] for o in outstanding}
    view = await positions(access, org, "tl-enf-2")
    assert view["secondary"][0]["records"][0]["p30_state"] == "complete"
    (record,) = (await access.get(org.id("tl-enf-2"), "/me/p30s")).json()["p30s"]
    assert (record["requested_by"], record["approved_by"], record["actioned_by"]) == (
        org.id("sm-enf"),
        org.id("tl-enf-1"),
        org.id("flls-1"),
    )
    again = await org.send(
        LodgeP30(user_id=org.id("tl-enf-2"), p30_id=p30.p30_id, discussion_held=True), "sm-enf"
    )
    rejected(again, "AC11")


async def test_ac11_emergency_request_still_checks_who_asks_and_the_limits(org: Org) -> None:
    outcome = await org.send(emergency(org), "tl-appeals")
    rejected(outcome, "AC08")
    first = await org.granted(absence(org, "tl-enf-3", "team-enf-4"), "sm-enf")
    assert first.rejection is None
    over = await org.send(
        RequestEmergencyAbsenceAccess(
            user_id=org.id("tl-enf-3"),
            unit_id=org.id("team-enf-2"),
            absent_user_id=org.id("tl-enf-2"),
        ),
        "sm-enf",
    )
    assert "clearance" in rejected(over, "AC02")


async def test_ac16_two_records_back_one_position_ending_one_keeps_the_access(
    access: AccessService, org: Org
) -> None:
    """Two standing records (two P30s) both back tl-enf-2's access to team 1: removing one ends
    that record only, no release of work, the position stays."""
    await org.granted(absence(org, "tl-enf-2", "team-enf-1"), "sm-enf")
    second = await org.granted(absence(org, "tl-enf-2", "team-enf-1"), "sm-enf")
    assert second.of(PositionGranted) == []  # already held: only a second record
    view = await positions(access, org, "tl-enf-2")
    (secondary,) = view["secondary"]
    assert len(secondary["records"]) == 2
    submitted = await org.send(
        RequestAccessRemoval(
            user_id=org.id("tl-enf-2"),
            position_id=secondary["position_id"],
            kind=AccessKind.ABSENCE,
            discussion_held=True,
            discussed_with=org.id("tl-enf-1"),
        ),
        "sm-enf",
        wait_for=P30Recorded,
    )
    assert submitted.of(AccessGrantEnded) == []  # not before the access team actions it
    removal = await org.action(submitted, wait_for=AccessGrantEnded)
    assert removal.one(AccessGrantEnded).position_kept
    assert removal.of(PositionReleaseRequested) == []
    view = await positions(access, org, "tl-enf-2")
    (secondary,) = view["secondary"]
    assert secondary["state"] == "active" and len(secondary["records"]) == 1


async def test_ac20_the_requester_cannot_action_their_own_p30_nor_anyone_outside_the_team(
    access: AccessService, org: Org
) -> None:
    submitted = await org.send(
        absence(org, "tl-enf-2", "team-enf-1"), "sm-enf", wait_for=P30Recorded
    )
    p30 = submitted.one(P30Recorded)
    action = ActionP30(user_id=org.id("tl-enf-2"), p30_id=p30.p30_id)
    # the requester, the approver, the user it is for, a caseworker, the line manager
    for who in ("sm-enf", "tl-enf-1", "tl-enf-2", "cw-1", "director"):
        reason = rejected(await org.send(action, who), "AC20")
        assert "access administration team" in reason
    refused_queue = await access.get(org.id("sm-enf"), "/p30s/to-action")
    assert refused_queue.status_code == 403 and refused_queue.json()["rule"] == "AC20"
    assert (await positions(access, org, "tl-enf-2"))["secondary"] == []
    ok = await org.send(action, "flls-1", wait_for=AccessGrantRecorded)
    assert ok.rejection is None
    rejected(await org.send(action, "flls-2"), "AC20")  # actioned once
    assert len((await positions(access, org, "tl-enf-2"))["secondary"]) == 1


async def test_ac20_the_p30_names_an_approver_other_than_the_requester(org: Org) -> None:
    own = RequestAbsenceAccess(
        user_id=org.id("tl-enf-2"),
        unit_ids=[org.id("team-enf-1")],
        discussion_held=True,
        discussed_with=org.id("sm-enf"),
    )
    assert "different people" in rejected(await org.send(own, "sm-enf"), "AC20")
    nobody = own.model_copy(update={"discussed_with": None})
    rejected(await org.send(nobody, "sm-enf"), "AC20")
    caseworker = own.model_copy(update={"discussed_with": org.id("cw-1")})
    rejected(await org.send(caseworker, "sm-enf"), "AC20")


async def test_ac20_a_refused_p30_grants_nothing(access: AccessService, org: Org) -> None:
    submitted = await org.send(
        absence(org, "tl-enf-2", "team-enf-1"), "sm-enf", wait_for=P30Recorded
    )
    p30 = submitted.one(P30Recorded)
    refuse = RefuseP30(user_id=org.id("tl-enf-2"), p30_id=p30.p30_id, reason="form incomplete")
    rejected(await org.send(refuse, "sm-enf"), "AC20")
    refused = await org.send(refuse, "flls-1", wait_for=P30Refused)
    assert refused.one(P30Refused).requested_by == org.id("sm-enf")
    assert refused.of(AccessGrantRecorded) == []
    late = await org.send(ActionP30(user_id=org.id("tl-enf-2"), p30_id=p30.p30_id), "flls-2")
    assert "refused" in rejected(late, "AC20")
    (record,) = (await access.get(org.id("tl-enf-2"), "/me/p30s")).json()["p30s"]
    assert (record["state"], record["refused_reason"]) == ("refused", "form incomplete")
    assert (await positions(access, org, "tl-enf-2"))["secondary"] == []


async def test_ac14_hierarchical_requests_one_position_at_a_time(org: Org) -> None:
    outcome = await org.send(hierarchical(org, "cw-1", "team-appeals", "jud-rev"), "tl-enf-1")
    assert "one position at a time" in rejected(outcome, "AC14")


async def test_ac13_hierarchical_access_only_into_the_four_named_segments(org: Org) -> None:
    outcome = await org.send(
        hierarchical(org, "cw-1", "international", agreed="sm-jud-rev"), "tl-enf-1"
    )
    assert "FS_GB_CMEXF_000_APPEALS" in rejected(outcome, "AC13")
    outcome = await org.send(hierarchical(org, "cw-1", "team-enf-2"), "tl-enf-1")
    rejected(outcome, "AC13")


async def test_ac13_functionally_unique_segment_is_warned(org: Org) -> None:
    submitted = await org.send(
        hierarchical(org, "cw-1", "tribunal", agreed="sm-appeals"), "tl-enf-1", wait_for=P30Recorded
    )
    outcome = await org.action(submitted)
    assert outcome.rejection is None
    p30 = submitted.one(P30Recorded)
    assert any("functionally unique" in w for w in p30.warnings)
    assert outcome.one(AccessGrantRecorded).warnings == p30.warnings


async def test_ac12_hierarchical_p30_by_lower_segment_tl_agreed_with_higher_segment(
    access: AccessService, org: Org
) -> None:
    # The higher segment's TL cannot complete the P30 for an enforcement caseworker.
    rejected(await org.send(hierarchical(org, "cw-1", "team-appeals"), "tl-appeals"), "AC12")
    # The agreement must be with a TL/SM of the higher segment.
    rejected(
        await org.send(hierarchical(org, "cw-1", "team-appeals", agreed="tl-enf-2"), "tl-enf-1"),
        "AC12",
    )
    submitted = await org.send(
        hierarchical(org, "cw-1", "team-appeals"), "tl-enf-1", wait_for=P30Recorded
    )
    ok = await org.action(submitted)
    p30 = submitted.one(P30Recorded)
    assert (p30.kind, p30.requested_by, p30.approved_by) == (
        AccessKind.HIERARCHICAL,
        org.id("tl-enf-1"),
        org.id("tl-appeals"),
    )
    granted = ok.one(PositionGranted)
    assert granted.kind is AccessKind.HIERARCHICAL and granted.role.value == "caseworker"
    view = await positions(access, org, "cw-1")
    assert [s["unit_id"] for s in view["secondary"]] == [org.id("team-appeals")]


async def test_ac15_hierarchical_access_removed_only_by_line_manager_of_the_tl(org: Org) -> None:
    ok = await org.granted(hierarchical(org, "cw-1", "team-appeals"), "tl-enf-1")
    position_id = ok.one(AccessGrantRecorded).position_id
    remove = RequestAccessRemoval(
        user_id=org.id("cw-1"), position_id=position_id, kind=AccessKind.HIERARCHICAL
    )
    for who in ("tl-enf-1", "tl-appeals", "cw-1"):
        assert org.id("sm-enf") in rejected(await org.send(remove, who), "AC15")
    submitted = await org.send(remove, "sm-enf", wait_for=P30Recorded)
    outcome = await org.action(submitted, wait_for=PositionReleaseRequested)
    assert outcome.one(PositionReleaseRequested).position_id == position_id


async def test_ac03_secondary_access_is_hierarchical_or_absence_related(
    access: AccessService, org: Org
) -> None:
    ok = await org.granted(hierarchical(org, "cw-1", "team-appeals"), "tl-enf-1")
    assert ok.one(AccessGrantRecorded).kind is AccessKind.HIERARCHICAL
    (secondary,) = (await positions(access, org, "cw-1"))["secondary"]
    assert secondary["kind"] == "hierarchical"
    # The primary position is not secondary access: it is neither granted nor removed as such.
    primary = await org.send(absence(org, "tl-enf-2", "team-enf-2"), "sm-enf")
    assert "primary position" in rejected(primary, "AC03")
    remove_primary = await org.send(
        RequestAccessRemoval(
            user_id=org.id("cw-1"), position_id=org.pos("cw-1"), kind=AccessKind.HIERARCHICAL
        ),
        "sm-enf",
    )
    assert "not a secondary position" in rejected(remove_primary, "AC03")
    # A removal names the kind of record it ends; no absence-related record backs this one.
    wrong_kind = await org.send(
        RequestAccessRemoval(
            user_id=org.id("cw-1"),
            position_id=secondary["position_id"],
            kind=AccessKind.ABSENCE,
            discussion_held=True,
        ),
        "sm-enf",
    )
    assert "absence-related" in rejected(wrong_kind, "AC04")


async def test_ac02_concurrent_requests_cannot_together_exceed_the_limit(
    access: AccessService, org: Org
) -> None:
    """Limits are checked in the grant's transaction: of three P30s for a team leader without
    clearance, submitted and then actioned at once by the access team, exactly one is granted."""
    submitted = [
        await org.send(absence(org, "tl-enf-3", team), "sm-enf", wait_for=P30Recorded)
        for team in ("team-enf-4", "team-enf-5", "team-enf-6")
    ]
    outcomes = await asyncio.gather(
        *(
            org.action(s, by)
            for s, by in zip(submitted, ("flls-1", "flls-2", "flls-1"), strict=True)
        )
    )
    granted = [o for o in outcomes if o.rejection is None]
    refused = [o.rejection for o in outcomes if o.rejection is not None]
    assert len(granted) == 1
    assert [r.rule for r in refused] == ["AC02", "AC02"]
    assert len((await positions(access, org, "tl-enf-3"))["secondary"]) == 1
