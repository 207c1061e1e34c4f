"""Secondary-access rules (AC01-AC22, DL03) and the directory's (TR03) as pure functions: no I/O, no
clock reads; time comes in as an argument. Each function cites the rules it enforces and raises
RuleViolation naming it."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from contracts.access import AccessKind, LoadDirectory, Role, UnitKind
from services.shared import working_days
from services.shared.identity import AppRole
from services.shared.rules import RuleViolation

MAX_POSITIONS = 10  # AC01
UNCLEARED_MAX_POSITIONS = 2  # AC02
REVIEW_MONTHS = 6  # AC09
REVIEW_NOTICE_WORKING_DAYS = 10  # AC09, DL03: flagged this many working days before it is due
# The scan's look-ahead: covers REVIEW_NOTICE_WORKING_DAYS whatever the holidays in between.
REVIEW_NOTICE = timedelta(days=28)
EMERGENCY_P30_WORKING_DAYS = 2  # AC11, DL03: the completed P30 is due within this
MANAGERS = frozenset({Role.TEAM_LEADER, Role.SEGMENT_MANAGER})
# TR03: the application roles (from the sign-in) that may create or change users and positions.
DIRECTORY_ROLES = frozenset({AppRole.DIRECTORY_ADMIN.value, AppRole.HR_FEED.value})
SECONDARY_ID_MARK = "@"  # secondary positions are `user@unit`; directory positions never are

# AC13: the only case-owning segments hierarchical access may lead into.
HIERARCHICAL_SEGMENT_CODES = {
    "FS_GB_CENOP_000_SPECIAL CLNT": "Special client records",
    "FS_GB_CMEXF_000_JUD REV": "Judicial review",
    "FS_GB_CMEXF_000_ESCAL COMP": "Escalated complaints",
    "FS_GB_CMEXF_000_APPEALS": "Appeals",
}


@dataclass(frozen=True)
class Unit:
    unit_id: str
    name: str
    parent_id: str | None = None
    code: str | None = None
    functionally_unique: bool = False
    kind: str = UnitKind.TEAM.value


@dataclass(frozen=True)
class Held:
    """A position a user holds. `backing` counts the active records that justify a secondary
    position; `removal_pending` is set while allocation releases its work (AC16), and
    `release_failed` when allocation could not (the removal stays pending and may be retried)."""

    position_id: str
    unit_id: str
    role: Role
    kind: AccessKind
    backing: int = 0
    removal_pending: bool = False
    release_failed: bool = False


@dataclass(frozen=True)
class Holdings:
    """Everything the rules need to know about one user's positions."""

    user_id: str
    security_clearance: bool
    line_manager_id: str | None
    positions: tuple[Held, ...] = field(default_factory=tuple)

    @property
    def primary(self) -> Held | None:
        return next((p for p in self.positions if p.kind is AccessKind.PRIMARY), None)

    def held(self, unit_id: str) -> Held | None:
        return next((p for p in self.positions if p.unit_id == unit_id), None)

    def position(self, position_id: str) -> Held | None:
        return next((p for p in self.positions if p.position_id == position_id), None)


def secondary_position_id(user_id: str, unit_id: str) -> str:
    """One position per user and unit, whichever records back it."""
    return f"{user_id}@{unit_id}"


def chain(units: Mapping[str, Unit], unit_id: str) -> list[str]:
    """The unit and its ancestors in the case-group hierarchy, nearest first."""
    out: list[str] = []
    current: str | None = unit_id
    while current is not None and current not in out:
        out.append(current)
        unit = units.get(current)
        current = unit.parent_id if unit else None
    return out


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def review_due(from_moment: datetime) -> datetime:
    """AC09: reviewed at least every six months from the grant or the last review."""
    return add_months(from_moment, REVIEW_MONTHS)


def check_limits(holdings: Holdings, unit_ids: Iterable[str], *, rule: str = "AC01") -> int:
    """AC01: at most ten positions in all; AC02: more than two needs security clearance.
    `rule` names the count rule (AC10 when several absence positions go on one P30). Returns
    the total the user would hold."""
    new = {u for u in unit_ids if holdings.held(u) is None}
    total = len(holdings.positions) + len(new)
    if total > MAX_POSITIONS:
        raise RuleViolation(
            rule,
            f"{holdings.user_id} would hold {total} positions; at most {MAX_POSITIONS} "
            "(primary and secondary) are allowed",
        )
    if total > UNCLEARED_MAX_POSITIONS and not holdings.security_clearance:
        raise RuleViolation(
            "AC02",
            f"{holdings.user_id} would hold {total} positions; more than "
            f"{UNCLEARED_MAX_POSITIONS} needs security clearance, which they do not have",
        )
    return total


def check_primary_manager(
    actor: Holdings | None, user: Holdings, units: Mapping[str, Unit], rule: str
) -> None:
    """AC08/AC12: the actor is a primary TL/SM of the user's primary segment (the user's primary
    unit or a segment above it)."""
    user_primary = user.primary
    actor_primary = actor.primary if actor else None
    if user_primary is None:
        raise RuleViolation(rule, f"{user.user_id} has no primary position")
    if (
        actor is None
        or actor_primary is None
        or actor_primary.role not in MANAGERS
        or actor_primary.unit_id not in chain(units, user_primary.unit_id)
        or actor.user_id == user.user_id
    ):
        who = actor.user_id if actor else "the actor"
        raise RuleViolation(
            rule,
            f"{who} is not a primary team leader or segment manager of "
            f"{user.user_id}'s primary segment {user_primary.unit_id}",
        )


def _check_targets(user: Holdings, units: Mapping[str, Unit], unit_ids: Sequence[str]) -> None:
    if len(set(unit_ids)) != len(unit_ids):
        raise RuleViolation("AC04", "a P30 names each position once")
    for unit_id in unit_ids:
        if unit_id not in units:
            raise RuleViolation("AC04", f"unknown team or segment {unit_id!r}")
        held = user.held(unit_id)
        if held is not None and held.kind is AccessKind.PRIMARY:
            raise RuleViolation(
                "AC03", f"{unit_id} is {user.user_id}'s primary position, not secondary access"
            )
        if held is not None and held.removal_pending:
            raise RuleViolation(
                "AC16", f"{held.position_id} is being removed; its work is being released"
            )


def plan_absence_grant(
    actor: Holdings | None,
    user: Holdings,
    units: Mapping[str, Unit],
    unit_ids: Sequence[str],
    *,
    discussion_held: bool,
    emergency: bool,
) -> None:
    """AC06/AC07: only TLs and SMs get absence-related access, never caseworkers. AC08: asked by
    the primary TL/SM of the user's primary segment, after the discussion with the case-owning
    TL (recorded; on the emergency path it comes with the P30 afterwards, AC11). AC10/AC01/AC02:
    the positions on one P30 keep the total at ten or fewer, clearance above two."""
    primary = user.primary
    if primary is None or primary.role not in MANAGERS:
        role = primary.role.value if primary else "no primary position"
        rule = "AC07" if primary is not None and primary.role is Role.CASEWORKER else "AC06"
        raise RuleViolation(
            rule,
            f"absence-related access is only for team leaders and segment managers; "
            f"{user.user_id} is {role} (a caseworker's cases are moved by their TL instead)",
        )
    check_primary_manager(actor, user, units, "AC08")
    if not emergency and not discussion_held:
        raise RuleViolation(
            "AC08",
            "the P30 must record that the discussion with the case-owning TL took place",
        )
    _check_targets(user, units, unit_ids)
    check_limits(user, unit_ids, rule="AC10" if len(unit_ids) > 1 else "AC01")


@dataclass(frozen=True)
class HierarchicalPlan:
    unit_id: str
    warnings: tuple[str, ...]


def hierarchical_segment(units: Mapping[str, Unit], unit_id: str) -> Unit | None:
    """AC13: the named case-owning segment the unit is (or lies within), if any."""
    for ancestor in chain(units, unit_id):
        unit = units.get(ancestor)
        if unit is not None and unit.code in HIERARCHICAL_SEGMENT_CODES:
            return unit
    return None


def plan_hierarchical_grant(
    actor: Holdings | None,
    agreed_with: Holdings | None,
    user: Holdings,
    units: Mapping[str, Unit],
    unit_ids: Sequence[str],
) -> HierarchicalPlan:
    """AC14: one position per request. AC13: only into the four named segments; functionally
    unique segments warned. AC12: a lower segment's member, P30 completed by that segment's
    TL/SM, agreed with a TL/SM of the higher segment. AC01/AC02: limits."""
    if len(unit_ids) != 1:
        raise RuleViolation(
            "AC14", f"hierarchical requests carry one position at a time, got {len(unit_ids)}"
        )
    (unit_id,) = unit_ids
    _check_targets(user, units, unit_ids)
    segment = hierarchical_segment(units, unit_id)
    if segment is None:
        codes = ", ".join(HIERARCHICAL_SEGMENT_CODES)
        raise RuleViolation(
            "AC13",
            f"hierarchical access is allowed only into the case-owning segments {codes}; "
            f"{units[unit_id].name} is not one of them",
        )
    check_primary_manager(actor, user, units, "AC12")
    primary = user.primary
    assert primary is not None  # checked above
    if unit_id in chain(units, primary.unit_id) or segment.unit_id in chain(units, primary.unit_id):
        raise RuleViolation(
            "AC12",
            f"{units[unit_id].name} is not above {user.user_id}'s own segment in the hierarchy",
        )
    agreed_primary = agreed_with.primary if agreed_with else None
    if (
        agreed_primary is None
        or agreed_primary.role not in MANAGERS
        or segment.unit_id not in chain(units, agreed_primary.unit_id)
    ):
        raise RuleViolation(
            "AC12",
            f"the access must be agreed with a team leader or segment manager of {segment.name}",
        )
    check_limits(user, unit_ids)
    warnings = tuple(
        f"AC13: {units[u].name} is a functionally unique segment; hierarchical access to it "
        "should be avoided"
        for u in chain(units, unit_id)
        if u in units and units[u].functionally_unique
    )
    return HierarchicalPlan(unit_id, warnings)


def secondary_position(user: Holdings, position_id: str) -> Held:
    """AC03: only secondary (hierarchical or absence-related) access is removed this way."""
    held = user.position(position_id)
    if held is None or held.kind is AccessKind.PRIMARY:
        raise RuleViolation("AC03", f"{position_id} is not a secondary position of {user.user_id}")
    return held


def recheck_grant(user: Holdings, units: Mapping[str, Unit], unit_ids: Sequence[str]) -> None:
    """AC20: when the access team actions a set-up P30, what it asks for must still be
    possible: AC03/AC16 targets and the AC01/AC02/AC10 limits, against what the user holds now."""
    _check_targets(user, units, unit_ids)
    check_limits(user, unit_ids, rule="AC10" if len(unit_ids) > 1 else "AC01")


def removal_on_action(user: Holdings, position_id: str) -> bool:
    """AC20/AC16: when the access team actions a removal P30 the position must still be held
    and not already being removed. Returns whether its work must be released first (no other
    record backs it)."""
    held = secondary_position(user, position_id)
    if held.removal_pending:
        raise RuleViolation(
            "AC16", f"{position_id} is already being removed; waiting for its work to be released"
        )
    return held.backing <= 1


@dataclass(frozen=True)
class RemovalPlan:
    """`release` is True when no other record backs the position: its work must be released by
    allocation before the position goes (AC16). Otherwise only the record ends. `retry`: the
    pending removal's release failed earlier and is asked for again."""

    release: bool
    retry: bool = False


def plan_removal(
    actor: Holdings | None,
    user: Holdings,
    units: Mapping[str, Unit],
    position_id: str,
    kind: AccessKind,
    *,
    set_up_by_line_manager: str | None,
    discussion_held: bool,
    via_review: bool = False,
) -> RemovalPlan:
    """AC08: absence-related access is removed by the primary TL/SM of the user's primary
    segment after the discussion. AC15: hierarchical access only by the line manager of the
    TL/SM who set it up. AC16: a position already being removed cannot be removed twice (unless
    its release failed: then the release is asked for again); the last backing record's removal
    goes through the release of work."""
    held = secondary_position(user, position_id)
    if held.removal_pending and not held.release_failed:
        raise RuleViolation(
            "AC16", f"{position_id} is already being removed; waiting for its work to be released"
        )
    if kind is AccessKind.ABSENCE:
        check_primary_manager(actor, user, units, "AC09" if via_review else "AC08")
        if not discussion_held and not via_review:
            raise RuleViolation(
                "AC08",
                "the removal P30 must record the discussion with the case-owning TL so that "
                "outstanding work is moved or cleared",
            )
    elif kind is AccessKind.HIERARCHICAL:
        if (
            actor is None
            or set_up_by_line_manager is None
            or actor.user_id != set_up_by_line_manager
        ):
            who = actor.user_id if actor else "the actor"
            raise RuleViolation(
                "AC15",
                f"hierarchical access is removed only by the line manager of the TL/SM who set it "
                f"up ({set_up_by_line_manager or 'none recorded'}), not by {who}",
            )
    return RemovalPlan(release=held.backing <= 1 or held.release_failed, retry=held.release_failed)


def check_review(
    actor: Holdings | None, user: Holdings, units: Mapping[str, Unit], kind: AccessKind
) -> None:
    """AC09: absence-related access is reviewed by the TL/SM responsible for it (AC08)."""
    if kind is not AccessKind.ABSENCE:
        raise RuleViolation("AC09", "only absence-related access has six-monthly reviews")
    check_primary_manager(actor, user, units, "AC09")


def review_flag(
    due_at: datetime, now: datetime, *, due_flagged: bool, overdue_flagged: bool
) -> str | None:
    """AC09: a review is flagged before it falls due, and escalated once it is overdue; an
    unanswered review is never renewed silently. DL03: "before" counts working days."""
    if now >= due_at and not overdue_flagged:
        return "overdue"
    ahead = working_days.working_days_between(now.date(), due_at.date())
    if now < due_at and ahead <= REVIEW_NOTICE_WORKING_DAYS and not due_flagged:
        return "due"
    return None


def p30_deadline(granted_at: datetime) -> datetime:
    """AC11, DL03: the completed P30 of an emergency grant is due at the close of the second
    working day after the grant."""
    return working_days.due_at(granted_at, EMERGENCY_P30_WORKING_DAYS)


# --- The access team (AC20, AC21) and overdue reviews (AC22) -------------------------------


def is_access_team(holder: Holdings | None, units: Mapping[str, Unit]) -> bool:
    """AC20: the access administration team is whoever holds a position (not being removed) in
    a unit the directory marks as the access team."""
    if holder is None:
        return False
    return any(
        not p.removal_pending
        and p.unit_id in units
        and units[p.unit_id].kind == UnitKind.ACCESS_TEAM.value
        for p in holder.positions
    )


def check_approver(
    approver: Holdings | None, *, approver_id: str | None, requester_id: str, user_id: str
) -> None:
    """AC20 (with AC08, AC12): the P30's approver is a team leader or segment manager (the
    case-owning TL it was discussed with, or the higher segment's TL/SM), someone other than
    the requester and the user the access is for."""
    primary = approver.primary if approver else None
    if not approver_id or primary is None or primary.role not in MANAGERS:
        raise RuleViolation(
            "AC20",
            f"the P30 must name its approver, a team leader or segment manager; "
            f"{approver_id or 'nobody'} is not one",
        )
    if approver_id in (requester_id, user_id):
        raise RuleViolation(
            "AC20",
            f"{approver_id} cannot approve a P30 they asked for or that gives them access: who "
            "asked, who approved and who actions are different people",
        )


def check_actioner(
    actor: Holdings | None,
    units: Mapping[str, Unit],
    *,
    actor_id: str,
    requested_by: str,
    approved_by: str | None,
    user_id: str,
    rule: str = "AC20",
) -> None:
    """AC20: a P30 is actioned (or refused) only by the access administration team, and never
    by whoever asked for it or approved it, nor for their own access."""
    if not is_access_team(actor, units):
        raise RuleViolation(
            rule,
            f"{actor_id or 'the actor'} is not in the access administration team; only the "
            "access team actions or refuses a P30",
        )
    if actor_id == requested_by:
        raise RuleViolation(rule, f"{actor_id} asked for this P30 and cannot action it too")
    if actor_id == approved_by:
        raise RuleViolation(rule, f"{actor_id} approved this P30 and cannot action it too")
    if actor_id == user_id:
        raise RuleViolation(rule, f"{actor_id} cannot action a P30 for their own access")


# What the access team may do with a P30 in each state (AC20, AC21).
ACTIONABLE_STATES = frozenset({"submitted"})
ANSWERABLE_STATES = frozenset({"requested"})
REFUSABLE_STATES = frozenset({"submitted", "requested", "scheduled"})


def check_p30_state(state: str, allowed: frozenset[str], rule: str) -> None:
    """AC20/AC21: a P30 is actioned, answered or refused once, in the state that allows it."""
    if state not in allowed:
        raise RuleViolation(
            rule, f"this P30 is {state}; only a P30 that is {' or '.join(sorted(allowed))} can be"
        )


def check_emergency_need(
    user_id: str,
    absent: Holdings | None,
    unit_id: str,
    holders: Sequence[tuple[str, Role]],
) -> None:
    """AC21: an emergency request is accepted only when the absence leaves nobody with access to
    the work: the absent user is a TL/SM holding a position in the unit, and nobody else holds
    an active team leader or segment manager position there (primary or secondary)."""
    held = absent.held(unit_id) if absent else None
    absent_id = absent.user_id if absent else "the absent user"
    if absent is None or held is None or held.role not in MANAGERS:
        raise RuleViolation(
            "AC21",
            f"{absent_id} holds no team leader or segment manager position in {unit_id}: an "
            "emergency request covers the work of an absent TL/SM",
        )
    if absent.user_id == user_id:
        raise RuleViolation("AC21", f"{user_id} is the absent user; the access is for someone else")
    others = sorted({u for u, role in holders if role in MANAGERS and u != absent.user_id})
    if others:
        raise RuleViolation(
            "AC21",
            f"{', '.join(others)} already hold access to {unit_id}'s work: an emergency request "
            "is only for when nobody does (use that access, or a standing P30)",
        )


def grant_now(grant_at: datetime | None, now: datetime) -> bool:
    """AC21: the access team grants at once unless it answers with a later time."""
    return grant_at is None or grant_at <= now


class OverdueReviewPolicy(StrEnum):
    """AC22: what happens to a review nobody answers (a setting)."""

    ESCALATE = "escalate"  # escalated only (AC09), the access stays until someone acts
    REMOVE = "remove"  # escalated, then removed after the grace period (AC16 release)


def lapse_due(
    policy: OverdueReviewPolicy,
    review_due_at: datetime,
    now: datetime,
    *,
    grace_working_days: int,
    overdue_flagged: bool,
) -> bool:
    """AC22: under the `remove` policy an escalated review still unanswered at the close of the
    grace period (working days after it fell due, DL03) is removed; it is never renewed."""
    if policy is not OverdueReviewPolicy.REMOVE or not overdue_flagged:
        return False
    return now >= working_days.due_at(review_due_at, grace_working_days)


def p30_overdue(deadline: datetime, now: datetime, *, flagged: bool) -> bool:
    """AC11: an outstanding emergency P30 past its deadline is flagged once."""
    return now >= deadline and not flagged


def check_lodge(state: str, emergency: bool, discussion_held: bool) -> None:
    """AC11: a completed P30 closes an outstanding emergency record; it carries the AC08
    discussion acknowledgement."""
    if not emergency or state != "outstanding":
        raise RuleViolation("AC11", "this P30 is not an outstanding emergency record")
    if not discussion_held:
        raise RuleViolation(
            "AC08", "the completed P30 must record the discussion with the case-owning TL"
        )


def check_change_position(actor_id: str, user: Holdings, position_id: str) -> Held:
    """AC17: a user switches only to a position they hold (and not one being removed)."""
    if actor_id != user.user_id:
        raise RuleViolation("AC17", "only the user can change their own current position")
    held = user.position(position_id)
    if held is None or held.removal_pending:
        raise RuleViolation("AC17", f"{user.user_id} does not hold position {position_id}")
    return held


def telephony_position(user: Holdings) -> Held | None:
    """AC05: calls route on the primary position only."""
    return user.primary


def refuse_completion_from_list_view() -> None:
    """AC18: items cannot be completed from the personal segment list view."""
    raise RuleViolation(
        "AC18",
        "the personal segment list view is read-only; change to the item's position and "
        "complete it from My service requests",
    )


# --- TR05: who reads whose access records (the checks the commands use) ----------------------


def require_reads_user(
    reader_id: str,
    reader: Holdings | None,
    user: Holdings,
    units: Mapping[str, Unit],
    *,
    access_team: bool,
) -> None:
    """TR05: a user reads their own positions, P30 records, removals and routing; another
    person's only as the access administration team (AC20), as their line manager (AC15), or as
    a primary team leader or segment manager of their primary segment (AC08:
    `check_primary_manager`, the check the commands use)."""
    if access_team or reader_id == user.user_id or user.line_manager_id == reader_id:
        return
    try:
        check_primary_manager(reader, user, units, "TR05")
    except RuleViolation:
        # The reason names no more of the user than the reader asked with (not their segment).
        raise RuleViolation(
            "TR05",
            f"{reader_id} may not read {user.user_id}'s access records: only the user, their "
            f"line manager (AC15), a primary team leader or segment manager of their primary "
            f"segment (AC08) or the access team (AC20) may",
        ) from None


def team_view_position(user_id: str, held: Held | None) -> Held:
    """AC19 (with AC17): the team view is a team leader's or segment manager's, for the selected
    position: the caseworkers of its team and the items assigned to that team. A caseworker
    reads their own service requests instead (AC18), never their colleagues' work."""
    if held is None:
        raise RuleViolation("AC17", f"{user_id} holds no position to view a team from")
    if held.role not in MANAGERS:
        raise RuleViolation(
            "AC19",
            f"the team view is for team leaders and segment managers; {user_id}'s current "
            f"position {held.position_id} is {held.role.value}: use My service requests (AC18)",
        )
    return held


# --- The directory (TR03, within AC01/AC02) --------------------------------------------------


@dataclass(frozen=True)
class DirectoryPosition:
    """A position as the directory holds it today, whatever its kind and state."""

    position_id: str
    user_id: str
    unit_id: str
    role: Role
    kind: AccessKind
    state: str = "active"  # active | removal_pending | removed


@dataclass(frozen=True)
class Directory:
    """What a directory load is decided against: every unit (`units`, with the full rows of
    the units it names in `unit_rows`), the rows of the users it names or touches, every
    position those users hold (any kind, not removed) and every position it names (any user)."""

    units: Mapping[str, Unit]
    unit_rows: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    users: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    positions: Mapping[str, DirectoryPosition] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectoryChange:
    """One audited change: `before` is None for a creation; unchanged entries are not listed."""

    entity: str  # unit | user | position
    entity_id: str
    action: str  # created | changed
    before: Mapping[str, object] | None
    after: Mapping[str, object]


@dataclass(frozen=True)
class DirectoryPlan:
    authority: tuple[str, ...]  # the caller's roles that allow the change (TR03)
    changes: tuple[DirectoryChange, ...]

    def of(self, entity: str) -> dict[str, DirectoryChange]:
        return {c.entity_id: c for c in self.changes if c.entity == entity}


def position_values(position: DirectoryPosition) -> dict[str, object]:
    return {
        "user_id": position.user_id,
        "unit_id": position.unit_id,
        "role": position.role.value,
        "kind": position.kind.value,
        "state": position.state,
    }


def _change(
    entity: str, entity_id: str, before: Mapping[str, object] | None, after: dict[str, object]
) -> DirectoryChange | None:
    if before is None:
        return DirectoryChange(entity, entity_id, "created", None, after)
    old = {k: before.get(k) for k in after}
    if old == after:
        return None
    return DirectoryChange(entity, entity_id, "changed", old, after)


def _named_once(kind: str, ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for entity_id in ids:
        if entity_id in seen:
            raise RuleViolation("TR03", f"the load names {kind} {entity_id!r} more than once")
        seen.add(entity_id)


def check_directory_authority(roles: Iterable[str], caller: str | None) -> tuple[str, ...]:
    """TR03: users and positions are created or changed only by a directory administrator or
    an HR feed (application roles of the caller's sign-in, never the caller's positions)."""
    held = tuple(sorted(DIRECTORY_ROLES.intersection(roles)))
    if not held:
        raise RuleViolation(
            "TR03",
            f"{caller or 'an unidentified caller'} may not change the directory: users and "
            f"positions are created or changed only by a directory administrator or an HR feed "
            f"({', '.join(sorted(DIRECTORY_ROLES))} role)",
        )
    return held


def plan_directory_load(
    roles: Iterable[str], caller: str | None, load: LoadDirectory, current: Directory
) -> DirectoryPlan:
    """The whole load is decided before anything is written; any breach refuses all of it.

    TR03: only a directory administrator or an HR feed loads or changes the directory, never
    their own user record or positions; a position held by one user is never moved to another;
    secondary positions change only through their P30s (AC04), so the directory does not
    reload them; each unit, user and position is named once, positions belong to existing
    users and units, and a unit's parent exists without making a loop in the hierarchy; no
    directory position or unit id contains `@`, so a secondary position id (`user@unit`) is
    never a directory position's nor another user's.
    AC01: every user the load names or gives a position to ends with exactly one primary
    position and at most ten in all; AC02: more than two needs security clearance (including
    when the load withdraws the clearance of someone who holds more). AC03: one position per
    user and unit (a primary position is not moved into a unit the user holds secondary
    access to)."""
    authority = check_directory_authority(roles, caller)
    _named_once("unit", [u.unit_id for u in load.units])
    _named_once("user", [u.user_id for u in load.users])
    _named_once("position", [p.position_id for p in load.positions])
    changes: list[DirectoryChange] = []

    # Units: the hierarchy after the load, whole.
    parents = {u.unit_id: u.parent_id for u in current.units.values()}
    parents.update({u.unit_id: u.parent_id for u in load.units})
    for unit in load.units:
        if SECONDARY_ID_MARK in unit.unit_id:
            raise RuleViolation(
                "TR03",
                f"unit id {unit.unit_id!r} contains {SECONDARY_ID_MARK!r}, which separates user "
                "and unit in secondary position ids (one user's could then be another's)",
            )
        if unit.parent_id is not None and unit.parent_id not in parents:
            raise RuleViolation(
                "TR03", f"unit {unit.unit_id!r} names an unknown parent {unit.parent_id!r}"
            )
        seen: set[str] = set()
        walk: str | None = unit.unit_id
        while walk is not None:
            if walk in seen:
                raise RuleViolation(
                    "TR03", f"unit {unit.unit_id!r} would make a loop in the case-group hierarchy"
                )
            seen.add(walk)
            walk = parents.get(walk)
        after = unit.model_dump(mode="json")
        after.pop("unit_id")
        found = _change("unit", unit.unit_id, current.unit_rows.get(unit.unit_id), after)
        if found:
            changes.append(found)

    # Users.
    clearance = {u: bool(row.get("security_clearance")) for u, row in current.users.items()}
    for user in load.users:
        if caller is not None and user.user_id == caller:
            raise RuleViolation(
                "TR03", f"{caller} may not change their own user record through the directory"
            )
        after = user.model_dump(mode="json")
        after.pop("user_id")
        clearance[user.user_id] = user.security_clearance
        found = _change("user", user.user_id, current.users.get(user.user_id), after)
        if found:
            changes.append(found)

    # Positions: never re-pointed, only primary ones, for existing users and units.
    held: dict[str, DirectoryPosition] = {
        p.position_id: p for p in current.positions.values() if p.state != "removed"
    }
    for spec in load.positions:
        pid = spec.position_id
        if SECONDARY_ID_MARK in pid:
            raise RuleViolation(
                "TR03",
                f"position id {pid!r} has the form of a secondary position (user@unit); the "
                "directory's positions never do",
            )
        if caller is not None and spec.user_id == caller:
            raise RuleViolation(
                "TR03", f"{caller} may not give themselves a position through the directory"
            )
        existing = current.positions.get(pid)
        if existing is not None and existing.user_id != spec.user_id:
            raise RuleViolation(
                "TR03",
                f"position {pid!r} is held by {existing.user_id}; a position is never moved to "
                f"another user ({spec.user_id})",
            )
        if spec.user_id not in clearance:
            raise RuleViolation("TR03", f"position {pid!r} is for an unknown user {spec.user_id!r}")
        if spec.unit_id not in parents:
            raise RuleViolation("TR03", f"position {pid!r} is in an unknown unit {spec.unit_id!r}")
        if existing is not None and existing.kind is not AccessKind.PRIMARY:
            raise RuleViolation(
                "TR03",
                f"position {pid!r} is {existing.user_id}'s {existing.kind.value} secondary "
                "access; it changes only through its P30 records, not the directory",
            )
        new = DirectoryPosition(pid, spec.user_id, spec.unit_id, spec.role, AccessKind.PRIMARY)
        held[pid] = new
        found = _change(
            "position",
            pid,
            position_values(existing) if existing is not None else None,
            position_values(new),
        )
        if found:
            changes.append(found)

    # AC01/AC02/AC03 for everyone the load names or gives a position to, as they will be.
    touched = {u.user_id for u in load.users} | {p.user_id for p in load.positions}
    by_user: dict[str, list[DirectoryPosition]] = {}
    for position in held.values():
        by_user.setdefault(position.user_id, []).append(position)
    for user_id in sorted(touched):
        mine = by_user.get(user_id, [])
        primaries = sorted(p.position_id for p in mine if p.kind is AccessKind.PRIMARY)
        if len(primaries) != 1:
            raise RuleViolation(
                "AC01",
                f"{user_id} would hold {len(primaries)} primary positions "
                f"({', '.join(primaries) or 'none'}); a user has one primary position",
            )
        units_held = [p.unit_id for p in mine]
        doubled = sorted({u for u in units_held if units_held.count(u) > 1})
        if doubled:
            raise RuleViolation(
                "AC03",
                f"{user_id} would hold two positions in {', '.join(doubled)}: one position per "
                "user and unit (primary or secondary access, not both)",
            )
        total = len(mine)
        if total > MAX_POSITIONS:
            raise RuleViolation(
                "AC01",
                f"{user_id} would hold {total} positions; at most {MAX_POSITIONS} "
                "(primary and secondary) are allowed",
            )
        if total > UNCLEARED_MAX_POSITIONS and not clearance[user_id]:
            raise RuleViolation(
                "AC02",
                f"{user_id} would hold {total} positions without security clearance; more than "
                f"{UNCLEARED_MAX_POSITIONS} needs it",
            )
    return DirectoryPlan(authority, tuple(changes))
