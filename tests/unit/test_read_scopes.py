"""TR05 as pure functions: what a signed-in reader may read in sign-off and access, decided by
the rules the commands use (AL10, SO01/SO03, AL13, AC08, AC15, AC19, AC20). Allocation's reads
(`domain.sight`) are tested beside AL10 in test_allocation_domain."""

from __future__ import annotations

import uuid

import pytest

from contracts.access import AccessKind, Role
from contracts.allocation import StepType
from contracts.signoff import MANAGEMENT_TEAM
from services.access import domain as access
from services.access.domain import Holding, Holdings, Unit
from services.shared.positions import Position
from services.shared.rules import RuleViolation
from services.signoff import domain as signoff
from services.signoff.domain import Step


def position(position_id: str, role: str, team: str) -> Position:
    """A position in the named team, as sign-off's repository gives it to the rules."""
    return Position(position_id, f"user-{position_id}", team, role, "primary", False, True, team)


NORTH = "Wellbeing Service North Team"
SO_MGMT = position("pos-so", Role.SENIOR_OFFICER.value, MANAGEMENT_TEAM)
SO_NORTH = position("pos-so-n", Role.SENIOR_OFFICER.value, NORTH)
TA = position("pos-ta", Role.TRUSTED_ASSESSOR.value, NORTH)
OTHER_TA = position("pos-ta2", Role.TRUSTED_ASSESSOR.value, NORTH)


def rule_of(call: object) -> str:
    with pytest.raises(RuleViolation) as caught:
        call()  # type: ignore[operator]
    return caught.value.rule


def test_tr05_al10_incoming_requests_are_read_by_the_teams_senior_officers() -> None:
    signoff.require_reads_requests("so", [SO_MGMT], MANAGEMENT_TEAM)
    signoff.require_reads_requests("so-n", [SO_NORTH], NORTH)
    signoff.require_reads_requests("both", [TA, SO_MGMT], MANAGEMENT_TEAM)  # any position
    for readers in ([TA], [SO_NORTH], []):
        refused = lambda r=readers: signoff.require_reads_requests("x", r, MANAGEMENT_TEAM)  # noqa: E731
        assert rule_of(refused) == "AL10"


def test_tr05_so03_a_step_is_read_by_its_worker_and_the_signoff_officers() -> None:
    step = Step(uuid.uuid4(), "P-1", StepType.TRUSTED_ASSESSMENT, "worker", TA.position_id)
    signoff.require_reads_step("ta", [TA], step)
    signoff.require_reads_step("so", [SO_MGMT], step)
    for readers in ([OTHER_TA], [SO_NORTH], []):
        refused = lambda r=readers: signoff.require_reads_step("x", r, step)  # noqa: E731
        assert rule_of(refused) == "SO03"


def test_tr05_al13_triage_and_case_monitoring_are_read_by_their_holder() -> None:
    """Steps without sign-off (AL13) are read by the worker holding them; the sign-off officers
    still read every step; a step in an inbox is nobody's to read until resumed or assigned."""
    hub = position("pos-hub", Role.HUB_TEAM_WORKER.value, "Wellbeing Service Hub Team")
    other_hub = position("pos-hub2", Role.HUB_TEAM_WORKER.value, "Wellbeing Service Hub Team")
    triage = Step(uuid.uuid4(), "P-1", StepType.TRIAGE, "worker", hub.position_id)
    signoff.require_reads_step("hub", [hub], triage)
    signoff.require_reads_step("so", [SO_MGMT], triage)
    for readers in ([other_hub], [TA], [SO_NORTH]):
        refused = lambda r=readers: signoff.require_reads_step("x", r, triage)  # noqa: E731
        assert rule_of(refused) == "SO03"
    in_inbox = Step(uuid.uuid4(), "P-1", StepType.CASE_MONITORING, "inbox", "WB inbox")
    assert rule_of(lambda: signoff.require_reads_step("ta", [TA], in_inbox)) == "SO03"


UNITS = {
    "cmg": Unit("cmg", "Case group"),
    "enforcement": Unit("enforcement", "Enforcement", "cmg"),
    "team-1": Unit("team-1", "Team 1", "enforcement"),
    "appeals": Unit("appeals", "Appeals", "cmg"),
    "team-appeals": Unit("team-appeals", "Appeals team", "appeals"),
}


def person(user_id: str, unit_id: str, role: Role, manager: str | None = None) -> Holdings:
    primary = Holding.of(user_id, f"pos-{user_id}", unit_id, role, AccessKind.PRIMARY)
    return Holdings(user_id, True, manager, (primary,))


CW = person("cw", "team-1", Role.CASEWORKER, manager="tl-1")
CW_2 = person("cw-2", "team-1", Role.CASEWORKER, manager="tl-1")
TL_1 = person("tl-1", "team-1", Role.TEAM_LEADER, manager="sm")
SM = person("sm", "enforcement", Role.SEGMENT_MANAGER)
TL_APPEALS = person("tl-appeals", "team-appeals", Role.TEAM_LEADER)


def test_tr05_another_users_access_records_only_for_those_responsible() -> None:
    def reads(reader: Holdings | None, reader_id: str, *, team: bool = False) -> None:
        access.require_reads_user(reader_id, reader, CW, UNITS, access_team=team)

    reads(CW, "cw")  # their own
    reads(TL_1, "tl-1")  # line manager (AC15) and primary TL of the team (AC08)
    reads(SM, "sm")  # primary SM of the segment above (AC08)
    reads(None, "access-admin", team=True)  # the access team (AC20)
    for reader, reader_id in ((CW_2, "cw-2"), (TL_APPEALS, "tl-appeals"), (None, "stranger")):
        refused = lambda r=reader, i=reader_id: reads(r, i)  # noqa: E731
        assert rule_of(refused) == "TR05"


def test_ac19_tr05_the_team_view_is_a_team_leaders() -> None:
    leader = Holding.of("tl", "pos-tl", "team-1", Role.TEAM_LEADER, AccessKind.ABSENCE)
    assert access.team_view_position("tl", leader) == leader
    worker = Holding.of("cw", "pos-cw", "team-1", Role.CASEWORKER, AccessKind.PRIMARY)
    assert rule_of(lambda: access.team_view_position("cw", worker)) == "AC19"
    assert rule_of(lambda: access.team_view_position("nobody", None)) == "AC17"
