"""Allocation's rules as pure functions: no broker, no database."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta

import pytest

from contracts.access import AccessKind, Role
from contracts.allocation import Priority, StepType, WorkState
from services.allocation import domain
from services.allocation.domain import Placement, Relationship, WorkItem
from services.shared.positions import Position
from services.shared.rules import RuleViolation

TODAY = date(2026, 3, 2)


def seat(
    role: Role,
    unit: str = domain.HUB_TEAM,
    kind: AccessKind = AccessKind.PRIMARY,
    active: bool = True,
    position_id: str | None = None,
) -> Position:
    pid = position_id or f"pos-{uuid.uuid4().hex[:6]}"
    return Position(pid, f"user-{pid}", unit, role.value, kind.value, False, active)


def item(
    step: StepType = StepType.TRIAGE,
    state: WorkState = WorkState.INCOMING,
    owner: tuple[str, str] = ("team", domain.HUB_TEAM),
    priority: str = "normal",
) -> WorkItem:
    return WorkItem(uuid.uuid4(), "P-1", step, state, owner[0], owner[1], priority)


def rule_of(call: object) -> str:
    with pytest.raises(RuleViolation) as caught:
        call()  # type: ignore[operator]
    return caught.value.rule


def test_al01_al03_triage_and_case_monitoring_go_to_hub_incoming() -> None:
    for step in (StepType.TRIAGE, StepType.CASE_MONITORING):
        assert domain.placement_for_new_step(step, None) == Placement(
            WorkState.INCOMING, "team", domain.HUB_TEAM
        )


def test_al02_trusted_assessment_by_area() -> None:
    assert domain.placement_for_new_step(StepType.TRUSTED_ASSESSMENT, "South").owner_id == (
        domain.SOUTH_TEAM
    )
    assert rule_of(lambda: domain.placement_for_new_step(StepType.TRUSTED_ASSESSMENT, "x")) == (
        "AL02"
    )


def test_al03_started_case_monitoring_sits_in_the_area_inbox() -> None:
    worker = seat(Role.HUB_TEAM_WORKER)
    placed = domain.start(item(StepType.CASE_MONITORING), worker, domain.HUB_TEAM, "North")
    inbox = domain.CASE_MONITORING_INBOXES[domain.Area.NORTH]
    assert placed == Placement(WorkState.INCOMPLETE, "inbox", inbox)
    triage = domain.start(item(), worker, domain.HUB_TEAM, "North")
    assert triage == Placement(WorkState.INCOMPLETE, "worker", worker.position_id)
    outsider = seat(Role.TRUSTED_ASSESSOR, domain.NORTH_TEAM)
    assert rule_of(lambda: domain.start(item(), outsider, domain.HUB_TEAM, "North")) == "AL03"
    started = item(state=WorkState.INCOMPLETE)
    assert rule_of(lambda: domain.start(started, worker, domain.HUB_TEAM, "North")) == "AL03"
    held = item(owner=("worker", "pos-other"))
    assert rule_of(lambda: domain.start(held, worker, domain.HUB_TEAM, "North")) == "AL03"


def test_al05_relationship_roles_need_involved_worker_in_force() -> None:
    ta = seat(Role.TRUSTED_ASSESSOR, domain.NORTH_TEAM)
    step = item(StepType.TRUSTED_ASSESSMENT, owner=("team", domain.NORTH_TEAM))
    assert rule_of(lambda: domain.assignment(step, ta, involved=False)) == "AL05"
    assert domain.assignment(step, ta, involved=True)[0].owner_id == ta.position_id
    rels = [Relationship(ta.user_id, "Involved Worker", TODAY, None)]
    assert domain.has_involved_worker(rels, ta.user_id, TODAY)
    assert not domain.has_involved_worker(rels, "someone else", TODAY)
    assert not domain.has_involved_worker(rels, ta.user_id, TODAY - timedelta(days=1))
    ended = [Relationship(ta.user_id, "Involved Worker", TODAY, TODAY)]
    assert not domain.has_involved_worker(ended, ta.user_id, TODAY + timedelta(days=1))
    other_type = [Relationship(ta.user_id, "Key Worker", TODAY, None)]
    assert not domain.has_involved_worker(other_type, ta.user_id, TODAY)


def test_al05_not_needed_for_triage_to_a_hub_worker() -> None:
    hub = seat(Role.HUB_TEAM_WORKER)
    assert domain.assignment(item(), hub, involved=False)[0].owner_id == hub.position_id


def test_al05_from_date_defaults_to_today_and_end_not_before_start() -> None:
    assert domain.relationship_dates(None, None, TODAY) == (TODAY, None)
    later = TODAY + timedelta(days=3)
    assert domain.relationship_dates(later, None, TODAY) == (later, None)
    assert rule_of(lambda: domain.relationship_dates(later, TODAY, TODAY)) == "AL05"
    assert rule_of(lambda: domain.relationship_worker(None, "pos-x")) == "AL05"


def test_al06_incoming_stays_incoming_and_finished_is_locked() -> None:
    hub = seat(Role.HUB_TEAM_WORKER)
    placed, priority = domain.assignment(item(priority="high"), hub, involved=False)
    assert (placed.state, placed.owner_kind, priority) == (WorkState.INCOMING, "worker", "high")
    finished = item(state=WorkState.FINISHED)
    assert rule_of(lambda: domain.assignment(finished, hub, involved=True)) == "AL06"
    mine = item(owner=("worker", hub.position_id))
    assert rule_of(lambda: domain.assignment(mine, hub, involved=True)) == "AL06"


def test_al07_priority_only_from_team_work() -> None:
    hub = seat(Role.HUB_TEAM_WORKER)
    _, changed = domain.assignment(item(), hub, involved=False, priority=Priority.URGENT)
    assert changed == "urgent"
    assert (
        rule_of(
            lambda: domain.assignment(
                item(), hub, involved=False, priority=Priority.URGENT, from_record=True
            )
        )
        == "AL07"
    )
    _, same = domain.assignment(
        item(), hub, involved=False, priority=Priority.NORMAL, from_record=True
    )
    assert same == "normal"
    assert domain.new_priority(item(), Priority.HIGH) == "high"
    assert rule_of(lambda: domain.new_priority(item(), Priority.NORMAL)) == "AL07"


def test_al08_outcomes_per_item_and_all_or_nothing() -> None:
    good, bad = item(), item()
    unknown = uuid.uuid4()
    decided: dict[uuid.UUID, Exception | None] = {
        good.work_item_id: None,
        bad.work_item_id: RuleViolation("AL05", "no"),
    }
    outcomes = domain.bulk_outcomes([good, bad, unknown], decided)
    assert [(o.ok, o.rule) for o in outcomes] == [(True, None), (False, "AL05"), (False, "AL08")]
    refusal = domain.bulk_refusal(outcomes)
    assert refusal is not None and refusal.rule == "AL08"
    assert f"AL05 no: {bad.work_item_id}" in refusal.reason and "2 of 3" in refusal.reason
    assert domain.bulk_refusal(outcomes[:1]) is None


def test_al09_reassign_needs_started_work_and_keeps_it_incomplete() -> None:
    hub = seat(Role.HUB_TEAM_WORKER)
    started = item(state=WorkState.INCOMPLETE, owner=("inbox", "x"))
    placed, _ = domain.assignment(started, hub, involved=False, started_only=True)
    assert placed.state is WorkState.INCOMPLETE
    assert rule_of(lambda: domain.assignment(item(), hub, involved=False, started_only=True)) == (
        "AL09"
    )


# An agency hierarchy: a segment with two teams (the Wellbeing teams need no entry: they have
# no parent and are the council's organisation).
AGENCY = {
    "seg": domain.Unit("seg", "segment", None, "hop-seg"),
    "team-a": domain.Unit("team-a", "team", "seg", "hop-a"),
    "team-b": domain.Unit("team-b", "team", "seg", "hop-b"),
}


def test_al10_senior_officer_or_team_leader_of_owning_or_management_team() -> None:
    owning = domain.NORTH_TEAM
    assert domain.authorise_allocation(seat(Role.SENIOR_OFFICER, owning), owning, {}, "allocate")
    assert domain.authorise_allocation(
        seat(Role.TEAM_LEADER, owning, AccessKind.HIERARCHICAL), owning, {}, "allocate"
    )
    assert domain.authorise_allocation(
        seat(Role.SENIOR_OFFICER, domain.MANAGEMENT_TEAM), owning, {}, "allocate"
    )
    for refused in (
        seat(Role.SENIOR_OFFICER, domain.SOUTH_TEAM),
        seat(Role.TRUSTED_ASSESSOR, owning),
        seat(Role.SENIOR_OFFICER, owning, active=False),
        None,
    ):
        check = lambda s=refused: domain.authorise_allocation(s, owning, {}, "x")  # noqa: E731
        assert rule_of(check) == "AL10"
    # A segment manager from the parent segment; a team leader from a team in the segment.
    sm = seat(Role.SEGMENT_MANAGER, "seg")
    assert domain.authorise_allocation(sm, "team-a", AGENCY, "allocate")
    tl = seat(Role.TEAM_LEADER, "team-b")
    assert domain.authorise_allocation(tl, "seg", AGENCY, "allocate")
    assert rule_of(lambda: domain.authorise_allocation(tl, "team-a", AGENCY, "x")) == "AL10"


def test_al10_authority_stays_inside_its_organisation() -> None:
    """The Management Team acts on the Wellbeing teams' work only: never on the agency's units
    (its Appeals hopper), and no agency position acts on the Wellbeing teams' work."""
    units = {
        **AGENCY,
        "appeals": domain.Unit("appeals", "segment", "seg", "hop-appeals"),
        "team-appeals": domain.Unit("team-appeals", "team", "appeals", "hop-team-appeals"),
        domain.MANAGEMENT_TEAM: domain.Unit(domain.MANAGEMENT_TEAM, "team"),
        domain.HUB_TEAM: domain.Unit(domain.HUB_TEAM, "team"),
        "other-root": domain.Unit("other-root", "segment"),
        "other-team": domain.Unit("other-team", "team", "other-root", "hop-other"),
    }
    assert {domain.organisation(units, u) for u in domain.TEAMS} == {domain.WELLBEING_SERVICE}
    assert {domain.organisation(units, u) for u in AGENCY} | {
        domain.organisation(units, "team-appeals")
    } == {"seg"}
    assert domain.organisation(units, "other-team") == "other-root"
    assert domain.organisation(units, "nowhere") is None
    mgmt = seat(Role.SENIOR_OFFICER, domain.MANAGEMENT_TEAM)
    for team in domain.TEAMS:
        assert domain.authorise_allocation(mgmt, team, units, "allocate")
    for agency_unit in ("team-appeals", "appeals", "seg", "other-team", "nowhere"):
        refusal = lambda u=agency_unit: domain.authorise_allocation(mgmt, u, units, "x")  # noqa: E731
        assert rule_of(refusal) == "AL10"
    with pytest.raises(RuleViolation, match="another organisation"):
        domain.authorise_allocation(mgmt, "team-appeals", units, "allocate")
    # Nor the other way round, nor between two agencies: a segment manager at the agency's root
    # acts on its direct children only, never on a Wellbeing team or another root's team.
    root_sm = seat(Role.SEGMENT_MANAGER, "seg")
    assert domain.authorise_allocation(root_sm, "appeals", units, "allocate")
    for foreign in (domain.HUB_TEAM, domain.MANAGEMENT_TEAM, "other-team", "other-root"):
        assert rule_of(lambda u=foreign: domain.authorise_allocation(root_sm, u, units, "x")) == (
            "AL10"
        )
    # An absence-related position outside the work's organisation is refused by AL10 first.
    absence = seat(Role.TEAM_LEADER, "team-a", AccessKind.ABSENCE)
    assert rule_of(lambda: domain.authorise_allocation(absence, domain.HUB_TEAM, units, "x")) == (
        "AL10"
    )


def test_tr05_al10_ac19_sight_is_what_the_commands_allow_plus_own_work() -> None:
    units = {
        **AGENCY,
        "appeals": domain.Unit("appeals", "segment", "seg", "hop-appeals"),
        "team-appeals": domain.Unit("team-appeals", "team", "appeals", "hop-team-appeals"),
    }
    mgmt = seat(Role.SENIOR_OFFICER, domain.MANAGEMENT_TEAM)
    seen = domain.sight(mgmt.user_id, [mgmt], units)
    assert seen.units == frozenset(domain.TEAMS)  # the Wellbeing teams, none of the agency's
    queues = domain.visible_queues(seen, units)
    assert set(domain.CASE_MONITORING_INBOXES.values()) <= queues.inboxes
    assert "hop-team-appeals" not in queues.hoppers
    assert not seen.sees("hopper", "hop-team-appeals", "team-appeals")
    assert rule_of(
        lambda: domain.require_sight(seen, "hopper", "hop-team-appeals", "team-appeals")
    ) == ("AL10")
    north = seat(Role.SENIOR_OFFICER, domain.NORTH_TEAM)
    assert domain.sight(north.user_id, [north], units).units == {domain.NORTH_TEAM}
    # A worker sees only the work assigned to their own positions.
    worker = seat(Role.CASEWORKER, "team-a")
    mine = domain.sight(worker.user_id, [worker], units)
    assert mine.units == frozenset() and mine.positions == {worker.position_id}
    assert mine.sees("worker", worker.position_id, "team-a")
    assert not mine.sees("worker", "pos-colleague", "team-a")
    assert not mine.sees("hopper", "hop-a", "team-a")
    assert rule_of(lambda: domain.require_unit_sight(mine, "team-a")) == "AL10"
    # A team leader with absence-related access to team-b sees team-b, not the segment.
    leader = seat(Role.TEAM_LEADER, "team-a")
    absence = Position(
        "pos-abs", leader.user_id, "team-b", Role.TEAM_LEADER, "absence-related", False
    )
    both = domain.sight(leader.user_id, [leader, absence], units)
    assert both.units == {"team-a", "seg", "team-b"}
    only_absence = domain.sight(leader.user_id, [absence], units)
    assert only_absence.units == {"team-b"}
    # Positions of someone else give nothing.
    assert domain.sight("someone-else", [mgmt, north], units).units == frozenset()


def test_ac19_absence_access_is_limited_to_that_team() -> None:
    absence = seat(Role.TEAM_LEADER, "team-a", AccessKind.ABSENCE)
    actor = domain.authorise_allocation(absence, "team-a", AGENCY, "allocate")
    assert rule_of(lambda: domain.authorise_allocation(absence, "team-b", AGENCY, "x")) == "AC19"
    domain.check_absence_target(actor, seat(Role.CASEWORKER, "team-a"))
    for target in (seat(Role.CASEWORKER, "team-b"), seat(Role.TEAM_LEADER, "team-a")):
        assert rule_of(lambda t=target: domain.check_absence_target(actor, t)) == "AC19"
    primary = seat(Role.TEAM_LEADER, "team-a")
    domain.check_absence_target(primary, seat(Role.CASEWORKER, "team-b"))
    started = item(state=WorkState.INCOMPLETE)
    assert domain.segment_hopper(started, "hop-seg", "seg") == Placement(
        WorkState.INCOMPLETE, "hopper", "hop-seg"
    )
    assert rule_of(lambda: domain.segment_hopper(item(), None, None)) == "AC19"


def test_ac07_team_leader_moves_an_absent_caseworkers_cases() -> None:
    absent = seat(Role.CASEWORKER, "team-a")
    tl = seat(Role.TEAM_LEADER, "team-a")
    colleague = seat(Role.CASEWORKER, "team-a")
    assert domain.absent_move_target(tl, absent, colleague, "hop-a").owner_id == (
        colleague.position_id
    )
    assert domain.absent_move_target(tl, absent, None, "hop-a") == Placement(
        WorkState.INCOMING, "hopper", "hop-a"
    )
    for actor, target, hopper in (
        (seat(Role.TEAM_LEADER, "team-b"), colleague, "hop-a"),
        (seat(Role.CASEWORKER, "team-a"), colleague, "hop-a"),
        (tl, seat(Role.CASEWORKER, "team-b"), "hop-a"),
        (tl, absent, "hop-a"),
        (tl, None, None),
    ):
        assert (
            rule_of(lambda a=actor, t=target, h=hopper: domain.absent_move_target(a, absent, t, h))
            == "AC07"
        )
    assert rule_of(lambda: domain.absent_move_target(tl, tl, None, "hop-a")) == "AC07"


def test_ac16_removed_position_gets_no_work_and_releases_to_hopper_or_successor() -> None:
    gone = seat(Role.CASEWORKER, "team-a", active=False)
    assert rule_of(lambda: domain.require_active_target(gone, "p")) == "AC16"
    assert rule_of(lambda: domain.require_active_target(None, "p")) == "AL06"
    position = seat(Role.CASEWORKER, "team-a")
    assert domain.release_target(position, None, None, "hop-a") == Placement(
        WorkState.INCOMING, "hopper", "hop-a"
    )
    assert domain.release_target(position, None, None, None).owner_id == "team-a"
    successor = seat(Role.CASEWORKER, "team-a")
    placed = domain.release_target(position, successor, successor.position_id, "hop-a")
    assert placed.owner_id == successor.position_id
    assert rule_of(lambda: domain.release_target(position, None, "pos-x", "hop-a")) == "AC16"
    assert rule_of(lambda: domain.release_target(position, gone, "pos-x", "hop-a")) == "AC16"
    # A next action for a removed position goes to its unit instead.
    assert domain.next_action_placement("worker", "p", gone, "hop-a").owner_id == "hop-a"


def test_so06_transfer_action_becomes_support_plan_delivery() -> None:
    assert domain.next_action_step("WB Transfer to Support Officer for Service Delivery") is (
        StepType.SUPPORT_PLAN_DELIVERY
    )
    assert domain.next_action_step(StepType.CASE_MONITORING.value) is StepType.CASE_MONITORING
    assert domain.next_action_step("Phone the GP") is None
    assert domain.next_action_placement("team", "team-a", None, "hop-a").owner_kind == "hopper"
    assert domain.next_action_placement("team", domain.HUB_TEAM, None, None).owner_kind == "team"


def test_al04_workflow_map_shows_where_the_person_is() -> None:
    mapped = domain.workflow_map(
        {
            StepType.TRIAGE: [WorkState.FINISHED],
            StepType.TRUSTED_ASSESSMENT: [WorkState.INCOMPLETE],
        }
    )
    assert [m["status"] for m in mapped] == ["finished", "incomplete", "not reached", "not reached"]


def test_ac16_al03_a_hopper_naming_a_case_monitoring_inbox_is_that_inbox() -> None:
    """The directory may name a Wellbeing team's Case Monitoring inbox as its hopper: work
    released there sits in the inbox, where the team's Senior Officer reassigns it (AL09)."""
    inbox = domain.CASE_MONITORING_INBOXES[domain.Area.NORTH]
    position = seat(Role.TRUSTED_ASSESSOR, domain.NORTH_TEAM)
    assert domain.release_target(position, None, None, inbox) == Placement(
        WorkState.INCOMING, "inbox", inbox
    )
    assert domain.queue(WorkState.INCOMPLETE, "hopper-team-1").owner_kind == "hopper"


def test_al02_al03_a_step_is_created_once() -> None:
    domain.require_new_step(StepType.CASE_MONITORING, uuid.uuid4(), None)
    existing = item()
    assert (
        rule_of(
            lambda: domain.require_new_step(StepType.TRUSTED_ASSESSMENT, uuid.uuid4(), existing)
        )
        == "AL02"
    )
    assert (
        rule_of(lambda: domain.require_new_step(StepType.CASE_MONITORING, uuid.uuid4(), existing))
        == "AL03"
    )


# --- AL13, AL14, AL11/SO10, AL16, AC23 -------------------------------------------------------

WELLBEING = {team: domain.Unit(team, "team") for team in domain.TEAMS}


def test_al14_area_senior_officer_reassigns_case_monitoring_a_hub_worker_started() -> None:
    hub_worker = seat(Role.HUB_TEAM_WORKER)
    started = item(
        StepType.CASE_MONITORING,
        WorkState.INCOMPLETE,
        owner=("worker", hub_worker.position_id),
    )
    north_so = seat(Role.SENIOR_OFFICER, domain.NORTH_TEAM)
    assert domain.authorise_on_work(
        north_so, started, domain.HUB_TEAM, "North", WELLBEING, "reassign"
    )
    # Not the other area's Senior Officer, nor a Trusted Assessor of the area.
    for refused in (
        seat(Role.SENIOR_OFFICER, domain.SOUTH_TEAM),
        seat(Role.TRUSTED_ASSESSOR, domain.NORTH_TEAM),
        None,
    ):
        check = lambda s=refused: domain.authorise_on_work(  # noqa: E731
            s, started, domain.HUB_TEAM, "North", WELLBEING, "reassign"
        )
        assert rule_of(check) == "AL10"
    # Only a started Case Monitoring step held by a worker: not triage, not incoming work.
    for other in (
        item(StepType.TRIAGE, WorkState.INCOMPLETE, ("worker", "pos-hub")),
        item(StepType.CASE_MONITORING, WorkState.INCOMING, ("worker", "pos-hub")),
        item(StepType.CASE_MONITORING, WorkState.INCOMING),
    ):
        check = lambda i=other: domain.authorise_on_work(  # noqa: E731
            north_so, i, domain.HUB_TEAM, "North", WELLBEING, "reassign"
        )
        assert rule_of(check) == "AL10"
    # The Hub Team's own Senior Officer keeps AL10's authority.
    hub_so = seat(Role.SENIOR_OFFICER, domain.HUB_TEAM)
    assert domain.authorise_on_work(hub_so, started, domain.HUB_TEAM, "North", WELLBEING, "x")
    # TR05: what the commands allow is what the reads show.
    north_sight = domain.sight(north_so.user_id, [north_so], WELLBEING)
    assert domain.case_monitoring_areas(north_sight) == ["North"]
    assert domain.sees_work(north_sight, started, domain.HUB_TEAM, "North")
    assert not domain.sees_work(north_sight, started, domain.HUB_TEAM, "South")


def test_al13_triage_next_action_sends_trusted_assessment_to_the_area_team() -> None:
    placed = domain.placement_for_next_action(StepType.TRUSTED_ASSESSMENT, "team", "South")
    assert placed == Placement(WorkState.INCOMING, "team", domain.SOUTH_TEAM)
    assert domain.next_action_step("WB Trusted Assessment and Support Planning") is (
        StepType.TRUSTED_ASSESSMENT
    )
    # To a named worker, or Case Monitoring: placed by the assignee (SO09).
    assert domain.placement_for_next_action(StepType.TRUSTED_ASSESSMENT, "worker", "South") is None
    assert domain.placement_for_next_action(StepType.CASE_MONITORING, "team", "South") is None


def test_al13_al11_generic_support_officer_resumes_case_monitoring() -> None:
    gso = seat(Role.GENERIC_SUPPORT_OFFICER, domain.NORTH_TEAM)
    inbox = domain.CASE_MONITORING_INBOXES[domain.Area.NORTH]
    for where in (
        item(StepType.CASE_MONITORING, WorkState.INCOMPLETE, ("inbox", inbox)),
        item(StepType.CASE_MONITORING, WorkState.INCOMPLETE, ("worker", "pos-ta")),
        item(StepType.CASE_MONITORING),
    ):
        assert domain.resume(where, gso, involved=True) == Placement(
            WorkState.INCOMPLETE, "worker", gso.position_id
        )
    monitoring = item(StepType.CASE_MONITORING, WorkState.INCOMPLETE, ("inbox", inbox))
    assert rule_of(lambda: domain.resume(monitoring, gso, involved=False)) == "AL11"
    ta = seat(Role.TRUSTED_ASSESSOR, domain.NORTH_TEAM)
    assert rule_of(lambda: domain.resume(monitoring, ta, involved=True)) == "AL13"
    triage = item(StepType.TRIAGE, WorkState.INCOMPLETE, ("worker", "pos-hub"))
    assert rule_of(lambda: domain.resume(triage, gso, involved=True)) == "AL13"
    done = item(StepType.CASE_MONITORING, WorkState.FINISHED, ("inbox", inbox))
    assert rule_of(lambda: domain.resume(done, gso, involved=True)) == "AL13"
    mine = item(StepType.CASE_MONITORING, WorkState.INCOMPLETE, ("worker", gso.position_id))
    assert rule_of(lambda: domain.resume(mine, gso, involved=True)) == "AL13"


def test_so10_al11_transfer_prompts_involved_worker_unless_recorded() -> None:
    gso = seat(Role.GENERIC_SUPPORT_OFFICER, domain.NORTH_TEAM)
    transfer = "WB Transfer to Support Officer for Service Delivery"
    assert domain.involved_worker_prompt(transfer, gso, [], TODAY) == gso
    recorded = Relationship(gso.user_id, "Involved Worker", TODAY, None)
    assert domain.involved_worker_prompt(transfer, gso, [recorded], TODAY) is None
    assert domain.involved_worker_prompt("WB Case Monitoring", gso, [], TODAY) is None
    assert domain.involved_worker_prompt(transfer, None, [], TODAY) is None


def test_ac23_service_request_completed_only_in_the_position_it_is_assigned_to() -> None:
    cw = seat(Role.CASEWORKER, "team-a")
    held = item(StepType.SERVICE_REQUEST, owner=("worker", cw.position_id))
    assert domain.complete_service_request(held, cw) == Placement(
        WorkState.FINISHED, "worker", cw.position_id
    )
    # The same user in another position (as from the personal segment list view): refused.
    other = replace(cw, position_id="pos-other-of-same-user")
    assert rule_of(lambda: domain.complete_service_request(held, other)) == "AC23"
    assert rule_of(lambda: domain.complete_service_request(held, None)) == "AC23"
    removed = replace(cw, active=False)
    assert rule_of(lambda: domain.complete_service_request(held, removed)) == "AC23"
    in_hopper = item(StepType.SERVICE_REQUEST, owner=("hopper", "hop-a"))
    assert rule_of(lambda: domain.complete_service_request(in_hopper, cw)) == "AC23"
    done = item(StepType.SERVICE_REQUEST, WorkState.FINISHED, ("worker", cw.position_id))
    assert rule_of(lambda: domain.complete_service_request(done, cw)) == "AC23"
    step = item(StepType.TRIAGE, owner=("worker", cw.position_id))
    assert rule_of(lambda: domain.complete_service_request(step, cw)) == "AC23"


def test_al16_workers_are_found_in_the_teams_the_reader_allocates_for() -> None:
    so = seat(Role.SENIOR_OFFICER, domain.NORTH_TEAM)
    seen = domain.sight(so.user_id, [so], WELLBEING)
    assert domain.require_finds_workers(seen) == frozenset({domain.NORTH_TEAM})
    ta = seat(Role.TRUSTED_ASSESSOR, domain.NORTH_TEAM)
    worker_sight = domain.sight(ta.user_id, [ta], WELLBEING)
    assert rule_of(lambda: domain.require_finds_workers(worker_sight)) == "AL10"
