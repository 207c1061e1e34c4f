"""Allocation rules as pure functions: no I/O, no clock reads. Each cites the rule it enforces."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.allocation import Area, StepType, WorkState
from services.shared.rules import RuleViolation

HUB_TEAM = "Wellbeing Service Hub Team"
NORTH_TEAM = "Wellbeing Service North Team"
SOUTH_TEAM = "Wellbeing Service South Team"
MANAGEMENT_TEAM = "Wellbeing Service Management Team"
TEAMS = (HUB_TEAM, NORTH_TEAM, SOUTH_TEAM, MANAGEMENT_TEAM)
AREA_TEAMS = {Area.NORTH: NORTH_TEAM, Area.SOUTH: SOUTH_TEAM}
DEFAULT_PRIORITY = "normal"


@dataclass(frozen=True)
class Placement:
    """Where a new work item lands."""

    state: WorkState
    owner_kind: str  # "team", "inbox", "hopper" or "worker"
    owner_id: str


def area_team(area: str | None) -> str:
    """AL02: the Trusted Assessment step goes to North or South by the person's area."""
    try:
        return AREA_TEAMS[Area(area or "")]
    except ValueError:
        raise RuleViolation(
            "AL02", f"area must be one of {[a.value for a in Area]} to route the step, got {area!r}"
        ) from None


def placement_for_new_step(step_type: StepType, area: str | None) -> Placement:
    """AL01: triage goes to the Hub Team's incoming work. AL02: Trusted Assessment to the North
    or South Team by area. AL03: Case Monitoring is Hub Team incoming work until started."""
    if step_type is StepType.TRIAGE:
        return Placement(WorkState.INCOMING, "team", HUB_TEAM)  # AL01
    if step_type is StepType.TRUSTED_ASSESSMENT:
        return Placement(WorkState.INCOMING, "team", area_team(area))  # AL02
    if step_type is StepType.CASE_MONITORING:
        return Placement(WorkState.INCOMING, "team", HUB_TEAM)  # AL03
    return Placement(WorkState.INCOMING, "team", area_team(area))
