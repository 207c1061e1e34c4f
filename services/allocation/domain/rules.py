"""Allocation rules as pure functions: no I/O, no clock reads. Each cites the rule it enforces.

The work item's methods (work_item.py) and the handlers' repositories pass in what a rule needs
(the item, the positions someone holds from the directory projection, with their active flag,
the person's relationships); the functions decide, and raise `RuleViolation` naming the rule
when the command must be refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from contracts.access import AccessKind, Role
from contracts.allocation import (
    INVOLVED_WORKER,
    Area,
    BulkItemOutcome,
    Owner,
    Priority,
    StepType,
    WorkState,
)
from contracts.signoff import NEXT_ACTION_STEPS, TRANSFER_TO_SUPPORT_OFFICER
from services.shared.positions import Position
from services.shared.rules import RuleViolation

if TYPE_CHECKING:
    from services.allocation.domain.work_item import WorkItem

HUB_TEAM = "Wellbeing Service Hub Team"
NORTH_TEAM = "Wellbeing Service North Team"
SOUTH_TEAM = "Wellbeing Service South Team"
MANAGEMENT_TEAM = "Wellbeing Service Management Team"
TEAMS = (HUB_TEAM, NORTH_TEAM, SOUTH_TEAM, MANAGEMENT_TEAM)
AREA_TEAMS = {Area.NORTH: NORTH_TEAM, Area.SOUTH: SOUTH_TEAM}
DEFAULT_PRIORITY = Priority.NORMAL.value

# AL03: started Case Monitoring may sit in the area's inbox; an inbox belongs to its team.
CASE_MONITORING_INBOXES = {
    Area.NORTH: "WB Case Monitoring North \u2013 Inbox (Unassigned)",
    Area.SOUTH: "WB Case Monitoring South \u2013 Inbox (Unassigned)",
}
INBOX_TEAMS = {inbox: AREA_TEAMS[area] for area, inbox in CASE_MONITORING_INBOXES.items()}

# AL10: who may screen, allocate, re-prioritise or reassign.
ALLOCATOR_ROLES = frozenset({Role.SENIOR_OFFICER, Role.TEAM_LEADER, Role.SEGMENT_MANAGER})
# AL05: allocating to these roles needs an `Involved Worker` relationship on the person.
RELATIONSHIP_ROLES = frozenset({Role.TRUSTED_ASSESSOR, Role.GENERIC_SUPPORT_OFFICER})
# AL04: the steps of the Wellbeing process, in order (the workflow map).
WORKFLOW = (
    StepType.TRIAGE,
    StepType.TRUSTED_ASSESSMENT,
    StepType.CASE_MONITORING,
    StepType.SUPPORT_PLAN_DELIVERY,
)


@dataclass(frozen=True)
class Placement:
    """Where a work item sits: its state and its owner."""

    state: WorkState
    owner_kind: str  # "team", "inbox", "hopper" or "worker"
    owner_id: str

    @property
    def owner(self) -> Owner:
        return Owner(kind=self.owner_kind, id=self.owner_id)


@dataclass(frozen=True)
class Relationship:
    worker_user_id: str
    relationship_type: str
    from_date: date
    end_date: date | None


def queue(state: WorkState, hopper_id: str) -> Placement:
    """A unit's queue for unassigned work: its hopper, or, where the directory names one of
    the Case Monitoring inboxes as the team's hopper, that inbox (AL03)."""
    return Placement(state, "inbox" if hopper_id in INBOX_TEAMS else "hopper", hopper_id)


def intake(unit_id: str, hopper_id: str | None) -> Placement:
    """A service request waits, unassigned, in its unit's hopper (AC19)."""
    if not hopper_id:
        raise RuleViolation("AC19", f"{unit_id!r} is not a known team or segment with a hopper")
    return queue(WorkState.INCOMING, hopper_id)


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


def require_new_step(step_type: StepType, work_item_id: uuid.UUID, existing: object) -> None:
    """A step is created once: a second creation under the same id is refused, naming the rule
    that places that step (AL01 triage, AL02 Trusted Assessment, AL03 the others)."""
    if existing is not None:
        rule = {StepType.TRIAGE: "AL01", StepType.TRUSTED_ASSESSMENT: "AL02"}.get(step_type, "AL03")
        raise RuleViolation(rule, f"work item {work_item_id} exists already")


# --- AL10 / AC19: who may act on whose work ---------------------------------------------------

# The council's organisation: its Adults Wellbeing Service, whose teams stand outside any
# segment (the directory gives them no parent). The agency's units all lead up to the root
# segment of its case-group hierarchy, which names that organisation.
WELLBEING_SERVICE = "Adults Wellbeing Service"


@dataclass(frozen=True)
class Unit:
    """A team or segment as the directory projection knows it (contracts.access.UnitDefined)."""

    unit_id: str
    kind: str  # UnitKind: "team" or "segment"
    parent_id: str | None = None
    hopper_id: str | None = None


Units = Mapping[str, Unit]


def root_unit(units: Units, unit_id: str) -> str:
    """The top of the unit's hierarchy: follow parent_id until a unit has none (or the chain
    leaves what the directory knows, or loops)."""
    seen = [unit_id]
    while True:
        unit = units.get(seen[-1])
        parent = unit.parent_id if unit else None
        if parent is None or parent in seen:
            return seen[-1]
        seen.append(parent)


def organisation(units: Units, unit_id: str | None) -> str | None:
    """AL10: the organisation a unit belongs to, from the organisation of units: the root of
    its hierarchy (parent_id to the top). The council's Wellbeing teams have no segment above
    them and together are its Adults Wellbeing Service; any other root (the agency's root
    segment, a stand-alone unit) is an organisation of its own. A unit the directory does not
    know belongs to none, so it gives nobody rights."""
    if not unit_id:
        return None
    root = root_unit(units, unit_id)
    if root in TEAMS:
        return WELLBEING_SERVICE
    return root if root in units else None


def authorise_allocation(
    actor: Position | None, owning_unit: str | None, units: Units, what: str
) -> Position:
    """AL10: only a Senior Officer or team leader holding an active position (primary or
    secondary) in the team that owns the work, or in the Management Team, may screen, allocate,
    re-prioritise or reassign it (a segment manager also from the owning team's segment; a
    team leader of a team inside the owning segment, from the segment hopper). Authority stays
    inside its organisation: the Management Team acts on the Wellbeing teams' work only, and no
    position gives rights over another organisation's units.
    AC19: with absence-related access the work must belong to the team of that position."""
    if actor is None or not actor.active:
        raise RuleViolation("AL10", f"the acting position is not an active position; cannot {what}")
    pos = actor
    if pos.role not in ALLOCATOR_ROLES:
        raise RuleViolation(
            "AL10", f"a {pos.role} may not {what}; a Senior Officer or team leader must"
        )
    mine, theirs = organisation(units, pos.unit_id), organisation(units, owning_unit)
    if mine is None or mine != theirs:
        raise RuleViolation(
            "AL10",
            f"position {pos.position_id} is in {pos.unit_id} ({mine or 'no known organisation'})"
            f" and the work belongs to {owning_unit} ({theirs or 'no known organisation'}): no "
            f"position gives rights over another organisation's units; cannot {what}",
        )
    if pos.kind == AccessKind.ABSENCE:
        if pos.unit_id != owning_unit:
            raise RuleViolation(
                "AC19",
                f"with absence-related access to {pos.unit_id} you may only {what} work of that "
                f"team (this work belongs to {owning_unit})",
            )
        return pos
    owning = units.get(owning_unit or "")
    acting = units.get(pos.unit_id)
    allowed = {owning_unit, MANAGEMENT_TEAM}  # the Management Team: its own organisation only
    if pos.role == Role.SEGMENT_MANAGER and owning is not None:
        allowed.add(owning.parent_id)
    from_segment = (
        owning_unit is not None and acting is not None and acting.parent_id == owning_unit
    )
    if pos.unit_id not in allowed and not from_segment:
        raise RuleViolation(
            "AL10",
            f"position {pos.position_id} is in {pos.unit_id}, not in the owning team "
            f"{owning_unit} or the Management Team; cannot {what}",
        )
    return pos


def authorise_step_creation(
    actor: Position | None, owning_unit: str | None, units: Units
) -> Position:
    """AL10 for creating a step: whoever may screen and allocate the team's work that the step
    becomes (its owning team, or the Management Team), or a Senior Officer of the Hub Team,
    which screens every new case (AL01) and whose triage sends the steps that follow (AL13),
    within its own organisation."""
    try:
        return authorise_allocation(actor, owning_unit, units, "create a step")
    except RuleViolation:
        if actor is None or actor.unit_id != HUB_TEAM:
            raise
        return authorise_allocation(actor, HUB_TEAM, units, "create a step")


# --- TR05: what a signed-in user reads (the same rules as the commands) ----------------------


@dataclass(frozen=True)
class Sight:
    """What one signed-in user may read of allocation's work: the work of every unit in which
    one of their positions may screen, allocate or reassign (AL10; an absence-related position
    only its accessed team, AC19), and the work assigned to their own positions (AC18)."""

    user_id: str
    positions: frozenset[str]
    units: frozenset[str]
    organisations: frozenset[str] = frozenset()  # those of the units of the user's positions

    def sees(self, owner_kind: str, owner_id: str, owning_unit: str | None) -> bool:
        if owner_kind == "worker" and owner_id in self.positions:
            return True
        return owning_unit is not None and owning_unit in self.units

    def in_organisation(self, units: Units, owning_unit: str | None) -> bool:
        """AL10: a person's record shows the work of the reader's own organisations only (a
        person known to both organisations is two records, one each)."""
        return organisation(units, owning_unit) in self.organisations


def sight(user_id: str, positions: Iterable[Position], units: Units) -> Sight:
    """TR05 with AL10, AC18 and AC19, from the active positions the user holds: a unit's work
    is visible where `authorise_allocation` would let one of them act on it."""
    held = [p for p in positions if p.user_id == user_id]
    visible: set[str] = set()
    for pos in held:
        if pos.role not in ALLOCATOR_ROLES:
            continue
        for unit_id in set(units) | set(TEAMS):
            try:
                authorise_allocation(pos, unit_id, units, "read")
            except RuleViolation:
                continue
            visible.add(unit_id)
    organisations = {o for p in held if (o := organisation(units, p.unit_id)) is not None}
    return Sight(
        user_id,
        frozenset(p.position_id for p in held),
        frozenset(visible),
        frozenset(organisations),
    )


@dataclass(frozen=True)
class Queues:
    """The owners, other than workers, whose work a sight covers."""

    teams: frozenset[str]
    inboxes: frozenset[str]
    hoppers: frozenset[str]


def visible_queues(seen: Sight, units: Units) -> Queues:
    """The team queues, the Case Monitoring inboxes (AL03: an inbox belongs to its team) and the
    hoppers of the units a sight covers."""
    hoppers = {
        unit.hopper_id
        for unit_id in seen.units
        if (unit := units.get(unit_id)) is not None and unit.hopper_id
    }
    inboxes = {inbox for inbox, team in INBOX_TEAMS.items() if team in seen.units}
    return Queues(frozenset(seen.units), frozenset(inboxes), frozenset(hoppers))


def require_sight(seen: Sight, owner_kind: str, owner_id: str, owning_unit: str | None) -> None:
    """TR05: refused, naming AL10, when the work is neither the user's own nor in a unit where
    they may screen or allocate."""
    if not seen.sees(owner_kind, owner_id, owning_unit):
        raise RuleViolation(
            "AL10",
            f"{seen.user_id} may not read this work: you read your own work and the work of "
            f"the teams where you may screen and allocate",
        )


def require_unit_sight(seen: Sight, unit_id: str) -> None:
    """TR05 with AL10: a team's summary and current work are read by those who may screen it."""
    if unit_id not in seen.units:
        raise RuleViolation(
            "AL10",
            f"{seen.user_id} may not read {unit_id}: only a Senior Officer or team leader of the "
            f"team (or, for the Wellbeing teams, of the Management Team) screens its work",
        )


def require_active_target(target: Position | None, position_id: str) -> Position:
    """AC16: a removed (revoked) position can never hold work, so nothing is assigned to it."""
    if target is None:
        raise RuleViolation("AL06", f"no worker position {position_id!r} is known")
    if not target.active:
        raise RuleViolation(
            "AC16", f"position {position_id} has been removed; work cannot be assigned to it"
        )
    return target


def check_absence_target(actor: Position, target: Position) -> None:
    """AC19: with absence-related access a team leader assigns only to caseworkers of the team
    of that position; a case for another team goes back to the segment hopper first."""
    if actor.kind != AccessKind.ABSENCE:
        return
    if target.unit_id != actor.unit_id or target.role != Role.CASEWORKER:
        raise RuleViolation(
            "AC19",
            f"with absence-related access to {actor.unit_id} you may assign only to caseworkers "
            f"of that team; send the case to the segment hopper and reassign it from the other "
            f"position",
        )


# --- AL05-AL09: assigning ---------------------------------------------------------------------


def has_involved_worker(relationships: Iterable[Relationship], user_id: str, today: date) -> bool:
    """AL05: an `Involved Worker` relationship for this worker, in force today."""
    return any(
        r.worker_user_id == user_id
        and r.relationship_type == INVOLVED_WORKER
        and r.from_date <= today
        and (r.end_date is None or r.end_date >= today)
        for r in relationships
    )


def assignment(
    item: WorkItem,
    target: Position,
    *,
    involved: bool,
    priority: Priority | None = None,
    from_record: bool = False,
    started_only: bool = False,
) -> tuple[Placement, str]:
    """Where the item goes and its priority after "pass to worker".

    AL06: an incoming item goes to the worker's incoming work, a started one to their
    incomplete work. AL09: reassigning needs started work and keeps it incomplete. AL05: a
    Trusted Assessor or Generic Support Officer needs `Involved Worker` on the person (not
    needed for a triage step given to a Hub Team worker). AL07: the priority may change only
    when assigning from the team's current work, not from the person's record."""
    if item.state is WorkState.FINISHED:
        raise RuleViolation("AL06", f"{item.step_type.value} is finished (locked); not assignable")
    if started_only and item.state is not WorkState.INCOMPLETE:
        raise RuleViolation(
            "AL09", "only started (incomplete) work is reassigned; assign incoming work instead"
        )
    if item.owner_kind == "worker" and item.owner_id == target.position_id:
        raise RuleViolation("AL06", f"the work is already assigned to {target.position_id}")
    if target.role in RELATIONSHIP_ROLES and not involved:
        raise RuleViolation(
            "AL05",
            f"record an '{INVOLVED_WORKER}' worker relationship for {target.user_id} on person "
            f"{item.person_id} before allocating to a {target.role}",
        )
    if priority is not None and from_record and priority.value != item.priority:
        raise RuleViolation(
            "AL07", "the priority cannot be changed when assigning from the person's record"
        )
    new_priority = priority.value if priority is not None else item.priority
    return Placement(item.state, "worker", target.position_id), new_priority


def bulk_outcomes(
    items: Sequence[WorkItem | uuid.UUID],
    decide: dict[uuid.UUID, Exception | None],
) -> list[BulkItemOutcome]:
    """AL08: one outcome per selected item, in the order selected; an unknown id is refused."""
    outcomes = []
    for entry in items:
        if isinstance(entry, uuid.UUID):
            outcomes.append(
                BulkItemOutcome(
                    work_item_id=entry, ok=False, rule="AL08", reason="no such work item"
                )
            )
            continue
        error = decide.get(entry.work_item_id)
        outcomes.append(
            BulkItemOutcome(
                work_item_id=entry.work_item_id,
                person_id=entry.person_id,
                ok=error is None,
                rule=error.rule if isinstance(error, RuleViolation) else None,
                reason=error.reason if isinstance(error, RuleViolation) else None,
            )
        )
    return outcomes


def bulk_refusal(outcomes: Sequence[BulkItemOutcome]) -> RuleViolation | None:
    """AL08: all or nothing; the refusal names the reason for each item refused."""
    refused = [o for o in outcomes if not o.ok]
    if not refused:
        return None
    by_reason: dict[tuple[str | None, str | None], list[str]] = {}
    for o in refused:
        by_reason.setdefault((o.rule, o.reason), []).append(str(o.work_item_id))
    details = "; ".join(
        f"{rule} {reason}: {', '.join(ids)}" for (rule, reason), ids in by_reason.items()
    )
    return RuleViolation(
        "AL08", f"{len(refused)} of {len(outcomes)} items refused, none assigned: {details}"
    )


def new_priority(item: WorkItem, priority: Priority) -> str:
    """AL07: the priority changes from the team's current work."""
    if item.state is WorkState.FINISHED:
        raise RuleViolation("AL07", "a finished step's priority cannot change")
    if item.priority == priority.value:
        raise RuleViolation("AL07", f"the priority is already {priority.value}")
    return priority.value


# --- AL03: starting a step --------------------------------------------------------------------


def start(
    item: WorkItem, actor: Position | None, owning_unit: str | None, area: str | None
) -> Placement:
    """AL03: starting moves a step from incoming to incomplete work. The worker holding it, or a
    member of the team whose incoming work it is, starts it; a team's Case Monitoring step
    started from the Hub Team's incoming work sits in the area's Case Monitoring inbox."""
    if item.state is not WorkState.INCOMING:
        raise RuleViolation("AL03", f"the step is {item.state.value}; only incoming work starts")
    if actor is None or not actor.active:
        raise RuleViolation("AL03", "the acting position is not an active position")
    pos = actor
    if item.owner_kind == "worker":
        if item.owner_id != pos.position_id:
            raise RuleViolation("AL03", "only the worker it is assigned to starts this step")
        return replace(item.placement, state=WorkState.INCOMPLETE)
    if pos.unit_id != owning_unit:
        raise RuleViolation(
            "AL03", f"only a member of {owning_unit} starts a step in its incoming work"
        )
    if item.step_type is StepType.CASE_MONITORING:
        try:
            inbox = CASE_MONITORING_INBOXES[Area(area or "")]
        except ValueError:
            raise RuleViolation(
                "AL03",
                f"the person's area must be North or South to place Case Monitoring, got {area!r}",
            ) from None
        return Placement(WorkState.INCOMPLETE, "inbox", inbox)
    return Placement(WorkState.INCOMPLETE, "worker", pos.position_id)


# --- AL05 / AL11: worker relationships -------------------------------------------------------


def relationship_dates(
    from_date: date | None, end_date: date | None, today: date
) -> tuple[date, date | None]:
    """AL05: the from-date defaults to today and may be amended; an end-date is not before it."""
    start_date = from_date or today
    if end_date is not None and end_date < start_date:
        raise RuleViolation("AL05", f"end date {end_date} is before from date {start_date}")
    return start_date, end_date


def relationship_worker(worker: Position | None, position_id: str) -> Position:
    """AL05: the worker of a relationship holds an active position."""
    if worker is None or not worker.active:
        raise RuleViolation("AL05", f"{position_id} is not an active worker position")
    return worker


# --- AC07 / AC19 / AC16: moving work without a chosen assignee --------------------------------


def absent_move_target(
    actor: Position | None,
    absent: Position | None,
    target: Position | None,
    team_hopper: str | None,
) -> Placement:
    """AC07: when a caseworker is absent, their team leader moves the caseworker's cases to
    another caseworker of the team or to the team hopper."""
    if absent is None:
        raise RuleViolation("AC07", "the absent caseworker's position is unknown")
    team = absent.unit_id
    if absent.role != Role.CASEWORKER:
        raise RuleViolation("AC07", "only a caseworker's cases are moved this way")
    if actor is None or not actor.active or actor.role != Role.TEAM_LEADER or actor.unit_id != team:
        raise RuleViolation("AC07", f"only a team leader of {team} moves its caseworkers' cases")
    if target is None:
        if not team_hopper:
            raise RuleViolation("AC07", f"{team} has no team hopper")
        return queue(WorkState.INCOMING, team_hopper)
    to = require_active_target(target, target.position_id)
    if to.role != Role.CASEWORKER or to.unit_id != team:
        raise RuleViolation("AC07", f"cases go to another caseworker of {team} or its hopper")
    if to.position_id == absent.position_id:
        raise RuleViolation("AC07", "the cases must go to another caseworker")
    return Placement(WorkState.INCOMING, "worker", to.position_id)


def moved(item: WorkItem, to: Placement) -> Placement:
    """Moving keeps started work started (AL09) and new work new."""
    return replace(to, state=item.state)


def segment_hopper(
    item: WorkItem, segment_hopper_id: str | None, segment_id: str | None
) -> Placement:
    """AC19: a case for another team goes back to the segment hopper first."""
    if item.state is WorkState.FINISHED:
        raise RuleViolation("AC19", "a finished step is not moved")
    if not segment_hopper_id:
        raise RuleViolation("AC19", f"the owning team has no segment hopper ({segment_id!r})")
    return queue(item.state, segment_hopper_id)


def release_target(
    position: Position | None,
    successor: Position | None,
    successor_id: str | None,
    unit_hopper: str | None,
) -> Placement:
    """AC16: work held in a position being removed goes to the named successor (an active
    position) or back to its unit's hopper (a Wellbeing team, which has no hopper, takes it back
    in its own queue)."""
    if successor_id is not None:
        if successor is None or not successor.active:
            raise RuleViolation("AC16", f"successor position {successor_id} is not active")
        return Placement(WorkState.INCOMING, "worker", successor_id)
    if position is None:
        raise RuleViolation("AC16", "the position is unknown, so its hopper is unknown")
    if unit_hopper:
        return queue(WorkState.INCOMING, unit_hopper)
    return Placement(WorkState.INCOMING, "team", position.unit_id)


# --- SO06 / SO07 / SO09: what sign-off's outcomes do to the work ------------------------------


def next_action_step(action_type: str) -> StepType | None:
    """SO06: `WB Transfer to Support Officer for Service Delivery` arrives as a `WB Support
    Action Plan Delivery` step (the mapping is sign-off's contract: NEXT_ACTION_STEPS); an
    action named after a step creates that step."""
    if action_type in NEXT_ACTION_STEPS:
        return NEXT_ACTION_STEPS[action_type]
    try:
        return StepType(action_type)
    except ValueError:
        return None


def next_action_placement(
    assignee_kind: str, assignee_id: str, assignee: Position | None, unit_hopper: str | None
) -> Placement:
    """SO09: each next action is new incoming work for its assignee. AC16: never for a removed
    position; its work goes to that position's hopper (or team) instead."""
    if assignee_kind != "worker":  # a team: its hopper where it has one, else its queue
        if unit_hopper:
            return queue(WorkState.INCOMING, unit_hopper)
        return Placement(WorkState.INCOMING, "team", assignee_id)
    if assignee is not None and assignee.active:
        return Placement(WorkState.INCOMING, "worker", assignee_id)
    if assignee is None:
        raise RuleViolation("SO06", f"unknown assignee position {assignee_id}")
    return release_target(assignee, None, None, unit_hopper)


def workflow_map(states: dict[StepType, list[WorkState]]) -> list[dict[str, str]]:
    """AL04: the Wellbeing steps in order and where this person is on each."""
    out = []
    for step in WORKFLOW:
        seen = states.get(step, [])
        if not seen:
            status = "not reached"
        elif any(s is not WorkState.FINISHED for s in seen):
            status = next(s.value for s in seen if s is not WorkState.FINISHED)
        else:
            status = WorkState.FINISHED.value
        out.append({"step_type": step.value, "status": status})
    return out


# --- AL13, AL14, AL11, AL16, AC23: steps that finish and the rest of the procedure ----------


def case_monitoring_area_team(
    item: WorkItem, owning_unit: str | None, area: str | None
) -> str | None:
    """AL14: a `WB Case Monitoring` step that a Hub Team worker has started is also the work of
    the North or South Team of the person's area, whose Senior Officer may reassign it (to the
    Trusted Assessor) although the Hub Team still owns it."""
    if (
        item.step_type is not StepType.CASE_MONITORING
        or item.state is not WorkState.INCOMPLETE
        or item.owner_kind != "worker"
        or owning_unit != HUB_TEAM
    ):
        return None
    try:
        return AREA_TEAMS[Area(area or "")]
    except ValueError:
        return None


def case_monitoring_areas(seen: Sight) -> list[str]:
    """AL14 for reads: the areas whose North or South Team the reader screens, so the Case
    Monitoring steps of that area's people that Hub Team workers started are theirs to see."""
    return sorted(area.value for area, team in AREA_TEAMS.items() if team in seen.units)


def sees_work(seen: Sight, item: WorkItem, owning_unit: str | None, area: str | None) -> bool:
    """TR05: a work item is read by those who may act on it: AL10/AC18/AC19 (`Sight.sees`) and
    AL14 (the area team's Senior Officer for Case Monitoring a Hub Team worker started)."""
    if seen.sees(item.owner_kind, item.owner_id, owning_unit):
        return True
    return case_monitoring_area_team(item, owning_unit, area) in seen.units


def authorise_on_work(
    actor: Position | None,
    item: WorkItem,
    owning_unit: str | None,
    area: str | None,
    units: Units,
    what: str,
) -> Position:
    """AL10 for the team that owns the work; failing that, AL14 for the area team of a started
    Case Monitoring step a Hub Team worker holds. The refusal is the owning team's (AL10)."""
    try:
        return authorise_allocation(actor, owning_unit, units, what)
    except RuleViolation:
        area_team_id = case_monitoring_area_team(item, owning_unit, area)
        if area_team_id is None or actor is None or actor.unit_id != area_team_id:
            raise
        return authorise_allocation(actor, area_team_id, units, what)


def placement_for_next_action(
    step_type: StepType, assignee_kind: str, area: str | None
) -> Placement | None:
    """AL13 with AL02: a Trusted Assessment sent to a team by triage's next actions goes to the
    North or South Team of the person's area; None: placed by its assignee (SO09)."""
    if step_type is StepType.TRUSTED_ASSESSMENT and assignee_kind != "worker" and area:
        return placement_for_new_step(step_type, area)
    return None


def resume(item: WorkItem, actor: Position | None, *, involved: bool) -> Placement:
    """AL13, AL11: a Generic Support Officer may resume the person's `WB Case Monitoring` step
    from the person's current work (from the Trusted Assessor, the inbox or the Hub Team's
    incoming work), once recorded as the person's `Involved Worker`; it becomes their
    incomplete work."""
    if item.step_type is not StepType.CASE_MONITORING:
        raise RuleViolation(
            "AL13", f"only a {StepType.CASE_MONITORING.value} step is resumed from current work"
        )
    if item.state is WorkState.FINISHED:
        raise RuleViolation("AL13", f"the {item.step_type.value} step is finished (locked)")
    if actor is None or not actor.active:
        raise RuleViolation("AL13", "the acting position is not an active position")
    pos = actor
    if pos.role != Role.GENERIC_SUPPORT_OFFICER:
        raise RuleViolation(
            "AL13",
            f"a {Role.GENERIC_SUPPORT_OFFICER.value} resumes Case Monitoring; a {pos.role} "
            f"is allocated it instead",
        )
    if item.owner_kind == "worker" and item.owner_id == pos.position_id:
        raise RuleViolation("AL13", "the step is already in your work")
    if not involved:
        raise RuleViolation(
            "AL11",
            f"only the person's '{INVOLVED_WORKER}' {Role.GENERIC_SUPPORT_OFFICER.value} resumes "
            f"their {StepType.CASE_MONITORING.value} step; {pos.user_id} is not recorded as one",
        )
    return Placement(WorkState.INCOMPLETE, "worker", pos.position_id)


def involved_worker_prompt(
    action_type: str,
    assignee: Position | None,
    relationships: Iterable[Relationship],
    today: date,
) -> Position | None:
    """SO10, AL11: once `WB Transfer to Support Officer for Service Delivery` is sent to a
    Generic Support Officer, the Senior Officer is prompted to record them as `Involved Worker`
    (unless that is already recorded). Returns the officer to record."""
    if action_type != TRANSFER_TO_SUPPORT_OFFICER or assignee is None or not assignee.active:
        return None
    if has_involved_worker(relationships, assignee.user_id, today):
        return None
    return assignee


def complete_service_request(item: WorkItem, actor: Position | None) -> Placement:
    """AC23 (with AC18): a service request is completed only from "My service requests" in its
    current position: the acting position must be the one it is assigned to (never another
    position of the same user, as the personal segment list view would). Completing finishes
    the work item."""
    if item.step_type is not StepType.SERVICE_REQUEST:
        raise RuleViolation(
            "AC23", f"a {item.step_type.value} step is finished, not completed as a service request"
        )
    if item.state is WorkState.FINISHED:
        raise RuleViolation("AC23", "the service request is already completed")
    if actor is None or not actor.active:
        raise RuleViolation("AC23", "the acting position is not an active position")
    if item.owner_kind != "worker" or item.owner_id != actor.position_id:
        raise RuleViolation(
            "AC23",
            f"a service request is completed from My service requests of the position it is "
            f"assigned to; it is not assigned to {actor.position_id} (change position "
            f"to the item's position to complete it)",
        )
    return Placement(WorkState.FINISHED, item.owner_kind, item.owner_id)


def require_finds_workers(seen: Sight) -> frozenset[str]:
    """AL16 with TR05 and AL10: "Find" searches workers by name in the teams where the reader
    may allocate; the teams searched."""
    if not seen.units:
        raise RuleViolation(
            "AL10",
            f"{seen.user_id} may not find workers: you find the workers of the teams where you "
            f"may screen and allocate",
        )
    return seen.units
