"""Secondary-access rules (AC01-AC22, DL03) and the directory's (TR03) as pure functions: no I/O, no
clock reads; time comes in as an argument. Each function cites the rules it enforces and raises
RuleViolation naming it."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from contracts import Event
from contracts.access import (
    AbsenceAccessReviewed,
    AbsenceReviewDue,
    AbsenceReviewLapsed,
    AbsenceReviewOverdue,
    AccessGrantEnded,
    AccessGrantRecorded,
    AccessKind,
    CurrentPositionChanged,
    DirectoryLoaded,
    EmergencyAccessGranted,
    EmergencyAccessRequested,
    EmergencyAccessScheduled,
    EmergencyP30Overdue,
    LoadDirectory,
    P30Actioned,
    P30Lodged,
    P30Refused,
    PositionGranted,
    PositionReleaseRequested,
    PositionRemovalFailed,
    PositionRevoked,
    Role,
    UnitDefined,
    UnitKind,
    UserRegistered,
)
from services.access.records import P30, Change, CurrentPosition, Grant, Release, Values
from services.shared import working_days
from services.shared.positions import Position
from services.shared.roles import AppRole
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
class Holding:
    """A position a user holds (the shared `Position`) with what access knows of it besides:
    `backing` counts the active records that justify a secondary position; `removal_pending` is
    set while allocation releases its work (AC16), and `release_failed` when allocation could
    not (the removal stays pending and may be retried)."""

    position: Position
    backing: int = 0
    removal_pending: bool = False
    release_failed: bool = False

    @classmethod
    def of(
        cls,
        user_id: str,
        position_id: str,
        unit_id: str,
        role: Role,
        kind: AccessKind,
        backing: int = 0,
        *,
        emergency: bool = False,
    ) -> Holding:
        return cls(Position(position_id, user_id, unit_id, role, kind, emergency), backing)

    @property
    def position_id(self) -> str:
        return self.position.position_id

    @property
    def unit_id(self) -> str:
        return self.position.unit_id

    @property
    def role(self) -> Role:
        return Role(self.position.role)

    @property
    def kind(self) -> AccessKind:
        return AccessKind(self.position.kind)


@dataclass(frozen=True)
class Facts:
    """What a decision is made with besides the user's holdings: who acts (their id and what
    they hold), the case-group hierarchy, the moment, and the seed the ids of what is written
    derive from (the same when the cause is replayed)."""

    actor_id: str
    actor: Holdings | None
    units: Mapping[str, Unit]
    now: datetime
    seed: uuid.UUID

    def id(self, name: str) -> uuid.UUID:
        return uuid.uuid5(self.seed, name)


@dataclass(frozen=True)
class Holdings:
    """A user's positions and the records backing them: the aggregate access's procedure runs
    on. Each method checks the rules (raising RuleViolation naming the one broken) and returns
    the `Change` it makes: the records to write and the events to publish."""

    user_id: str
    security_clearance: bool
    line_manager_id: str | None
    positions: tuple[Holding, ...] = field(default_factory=tuple)
    current_position_id: str | None = None  # AC17: as the user last chose it

    @property
    def primary(self) -> Holding | None:
        return next((p for p in self.positions if p.kind is AccessKind.PRIMARY), None)

    def held(self, unit_id: str) -> Holding | None:
        return next((p for p in self.positions if p.unit_id == unit_id), None)

    def position(self, position_id: str | None) -> Holding | None:
        return next((p for p in self.positions if p.position_id == position_id), None)

    # --- Set-up P30s (AC06-AC15, AC20) ---------------------------------------------------------

    def request_absence_access(
        self,
        facts: Facts,
        unit_ids: Sequence[str],
        *,
        discussion_held: bool,
        approver_id: str | None,
        approver: Holdings | None,
        reason: str,
    ) -> Change:
        """AC06-AC10: the TL/SM submits the P30, approved by the case-owning TL it was discussed
        with (AC20); the access team actions it."""
        plan_absence_grant(
            facts.actor,
            self,
            facts.units,
            unit_ids,
            discussion_held=discussion_held,
            emergency=False,
        )
        check_approver(
            approver, approver_id=approver_id, requester_id=facts.actor_id, user_id=self.user_id
        )
        change = Change()
        change.record(
            new_p30(
                facts,
                self.user_id,
                action="set-up",
                kind=AccessKind.ABSENCE,
                unit_ids=tuple(unit_ids),
                approved_by=approver_id,
                reason=reason,
                discussion_held=discussion_held,
                discussed_with=approver_id,
                state="submitted",
            )
        )
        return change

    def request_emergency_access(
        self,
        facts: Facts,
        unit_id: str,
        *,
        absent_user_id: str,
        absent: Holdings | None,
        holders: Sequence[tuple[str, Role]],
        reason: str,
    ) -> Change:
        """AC11/AC21: accepted only when nobody but the absent TL/SM holds their unit; the access
        team answers it."""
        plan_absence_grant(
            facts.actor, self, facts.units, [unit_id], discussion_held=False, emergency=True
        )
        check_emergency_need(self.user_id, absent, unit_id, holders)
        change = Change()
        p30 = change.record(
            new_p30(
                facts,
                self.user_id,
                action="set-up",
                kind=AccessKind.ABSENCE,
                unit_ids=(unit_id,),
                approved_by=None,
                reason=reason,
                discussion_held=False,
                discussed_with=None,
                state="requested",
                emergency=True,
                absent_user_id=absent_user_id,
            )
        )
        change.events.append(
            EmergencyAccessRequested(
                p30_id=p30.p30_id,
                user_id=self.user_id,
                unit_id=unit_id,
                absent_user_id=absent_user_id,
                requested_by=facts.actor_id,
            )
        )
        return change

    def request_hierarchical_access(
        self,
        facts: Facts,
        unit_ids: Sequence[str],
        *,
        agreed_with_id: str,
        agreed_with: Holdings | None,
        reason: str,
    ) -> Change:
        """AC12-AC14: the lower segment's TL/SM submits the P30, approved by the higher segment's
        TL/SM it was agreed with (AC20); the access team actions it."""
        plan = plan_hierarchical_grant(facts.actor, agreed_with, self, facts.units, unit_ids)
        check_approver(
            agreed_with,
            approver_id=agreed_with_id,
            requester_id=facts.actor_id,
            user_id=self.user_id,
        )
        change = Change()
        change.record(
            new_p30(
                facts,
                self.user_id,
                action="set-up",
                kind=AccessKind.HIERARCHICAL,
                unit_ids=(plan.unit_id,),
                approved_by=agreed_with_id,
                reason=reason,
                discussion_held=True,
                discussed_with=agreed_with_id,
                state="submitted",
                warnings=plan.warnings,
            )
        )
        return change

    # --- The access team answers, actions or refuses (AC20, AC21) --------------------------------

    def answer_emergency_request(
        self,
        facts: Facts,
        p30_id: uuid.UUID,
        record: P30 | None,
        grant_at: datetime | None,
        *,
        absent: Holdings | None,
        holders: Sequence[tuple[str, Role]],
    ) -> Change:
        """AC21: the access team grants at once or answers with its time scale (the access
        scheduler grants it then: `grant_scheduled`)."""
        record = team_p30(facts, self, p30_id, record, ANSWERABLE_STATES, "AC21")
        (unit_id,) = record.unit_ids
        if grant_at is not None and not grant_now(grant_at, facts.now):
            change = Change()
            change.p30s.append(
                (
                    record.p30_id,
                    {
                        "state": "scheduled",
                        "scheduled_for": grant_at,
                        "actioned_by": facts.actor_id,
                    },
                )
            )
            change.events.append(
                EmergencyAccessScheduled(
                    p30_id=record.p30_id,
                    user_id=self.user_id,
                    unit_id=unit_id,
                    requested_by=record.requested_by,
                    answered_by=facts.actor_id,
                    grant_at=grant_at,
                )
            )
            return change
        # Still nobody with access, and still within the limits, now that it is granted.
        check_emergency_need(self.user_id, absent, unit_id, holders)
        recheck_grant(self, facts.units, [unit_id])
        return self.grant_emergency(facts.now, record, actioned_by=facts.actor_id)

    def grant_emergency(self, now: datetime, record: P30, *, actioned_by: str) -> Change:
        """AC21: the emergency grant (at once, or when its time scale comes): the P30 becomes
        outstanding with its working-day deadline (AC11, DL03); the requester and user are told
        (NT04)."""
        (unit_id,) = record.unit_ids
        deadline = p30_deadline(now)
        change = Change()
        change.p30s.append(
            (
                record.p30_id,
                {
                    "state": "outstanding",
                    "deadline": deadline,
                    "actioned_by": actioned_by,
                    "actioned_at": now,
                },
            )
        )
        position_id = self._grant(change, now, unit_id, AccessKind.ABSENCE, record, emergency=True)
        change.events.append(
            EmergencyAccessGranted(
                p30_id=record.p30_id,
                user_id=self.user_id,
                position_id=position_id,
                requested_by=record.requested_by,
                p30_deadline=deadline,
                actioned_by=actioned_by,
            )
        )
        return change

    def action_p30(
        self, facts: Facts, p30_id: uuid.UUID, record: P30 | None, *, grant: Grant | None
    ) -> Change:
        """AC20: the grant or removal the P30 asks for happens now, by the access team; a
        removal goes through the release of work (AC16) when no other record backs the
        position. `grant` is the record a removal P30 ends."""
        record = team_p30(facts, self, p30_id, record, ACTIONABLE_STATES, "AC20")
        if record.action == "set-up":
            recheck_grant(self, facts.units, record.unit_ids)
            state = "complete"
        else:
            if grant is None or not grant.active:
                raise RuleViolation(
                    "AC04", f"the record this P30 removes ({record.grant_id}) ended"
                )
            release = removal_on_action(self, record.position_id or "")
            state = "pending" if release else "complete"
        change = Change()
        change.p30s.append(
            (
                record.p30_id,
                {
                    "state": state,
                    "actioned_by": facts.actor_id,
                    "actioned_at": facts.now,
                    "closed_at": facts.now if state == "complete" else None,
                },
            )
        )
        change.events.append(
            P30Actioned(
                p30_id=record.p30_id,
                user_id=self.user_id,
                action=record.action,
                kind=record.kind,
                unit_ids=list(record.unit_ids),
                requested_by=record.requested_by,
                approved_by=record.approved_by,
                actioned_by=facts.actor_id,
                actioned_at=facts.now,
            )
        )
        if record.action == "set-up":
            for unit_id in record.unit_ids:
                self._grant(change, facts.now, unit_id, record.kind, record)
            return change
        held = self.position(record.position_id)
        assert held is not None and grant is not None  # removal_on_action checked it
        return change.then(
            carry_out_removal(
                facts,
                self.user_id,
                held,
                grant.grant_id,
                record.p30_id,
                record.successor_position_id,
                release=state == "pending",
            )
        )

    def refuse_p30(
        self, facts: Facts, p30_id: uuid.UUID, record: P30 | None, reason: str
    ) -> Change:
        """AC20: refused by the access team with its reason; nothing is granted or removed."""
        record = team_p30(facts, self, p30_id, record, REFUSABLE_STATES, "AC20")
        change = Change()
        change.p30s.append(
            (
                record.p30_id,
                {
                    "state": "refused",
                    "refused_reason": reason,
                    "actioned_by": facts.actor_id,
                    "actioned_at": facts.now,
                    "closed_at": facts.now,
                },
            )
        )
        change.events.append(
            P30Refused(
                p30_id=record.p30_id,
                user_id=self.user_id,
                requested_by=record.requested_by,
                refused_by=facts.actor_id,
                reason=reason,
            )
        )
        return change

    def lodge_p30(
        self,
        facts: Facts,
        p30_id: uuid.UUID,
        record: P30 | None,
        *,
        discussion_held: bool,
        approver_id: str | None,
        approver: Holdings | None,
        reason: str,
    ) -> Change:
        """AC11: the completed P30 closes the outstanding emergency record; it names its
        approver (the case-owning TL it was discussed with, AC20)."""
        if record is None or record.user_id != self.user_id:
            raise RuleViolation("AC11", f"no emergency P30 {p30_id} for {self.user_id}")
        check_primary_manager(facts.actor, self, facts.units, "AC08")
        check_lodge(record.state, record.emergency, discussion_held)
        check_approver(
            approver, approver_id=approver_id, requester_id=facts.actor_id, user_id=self.user_id
        )
        change = Change()
        change.p30s.append(
            (
                record.p30_id,
                {
                    "state": "complete",
                    "approved_by": approver_id,
                    "discussion_held": True,
                    "discussed_with": approver_id,
                    "reason": reason or record.reason,
                    "closed_at": facts.now,
                    "closed_by": facts.actor_id,
                },
            )
        )
        change.events.append(
            P30Lodged(
                p30_id=record.p30_id,
                user_id=self.user_id,
                lodged_by=facts.actor_id,
                lodged_at=facts.now,
                late=record.deadline is not None and facts.now > record.deadline,
            )
        )
        return change

    # --- Removal (AC08, AC15, AC16) and reviews (AC09, AC22) ------------------------------------

    def request_removal(
        self,
        facts: Facts,
        position_id: str,
        kind: AccessKind,
        grant: Grant | None,
        history: RemovalHistory,
        *,
        reason: str,
        discussion_held: bool,
        approver_id: str | None,
        approver: Holdings | None,
        successor_position_id: str | None,
    ) -> Change:
        """AC03: only secondary access is removed this way; AC04: `grant`, the active record of
        `kind` backing it, is the one the removal P30 ends."""
        held = secondary_position(self, position_id)
        if grant is None or grant.user_id != self.user_id:
            raise RuleViolation(
                "AC04", f"no active {kind.value} record backs {position_id} for {self.user_id}"
            )
        return self._submit_removal(
            facts,
            held,
            grant,
            history,
            reason=reason,
            discussion_held=discussion_held,
            approver_id=approver_id,
            approver=approver,
            successor_position_id=successor_position_id,
        )

    def review_absence_access(
        self,
        facts: Facts,
        grant_id: uuid.UUID,
        grant: Grant | None,
        history: RemovalHistory,
        *,
        confirm: bool,
        reason: str,
        successor_position_id: str | None,
    ) -> Change:
        """AC09: confirm (due again in six months) or remove (a removal P30 for the access team,
        then the AC16 saga)."""
        if grant is None or grant.user_id != self.user_id or not grant.active:
            raise RuleViolation("AC09", f"no active absence-related record {grant_id}")
        held = self.position(grant.position_id)
        assert held is not None
        check_review(facts.actor, self, facts.units, grant.kind)
        change = Change()
        if not confirm:
            change = self._submit_removal(
                facts,
                held,
                grant,
                history,
                reason=reason or "removed at review",
                discussion_held=True,
                approver_id=None,
                approver=None,
                successor_position_id=successor_position_id,
                via_review=True,
            )
        next_due = review_due(facts.now) if confirm else None
        if confirm:
            change.grant_updates.append(
                (
                    grant.grant_id,
                    {
                        "review_due_at": next_due,
                        "review_due_flagged": False,
                        "review_overdue_flagged": False,
                    },
                )
            )
        change.events.append(
            AbsenceAccessReviewed(
                grant_id=grant_id,
                user_id=self.user_id,
                position_id=held.position_id,
                reviewed_by=facts.actor_id,
                confirmed=confirm,
                next_review_due_at=next_due,
            )
        )
        return change

    def lapse_review(self, facts: Facts, grant: Grant, *, grace_working_days: int) -> Change | None:
        """AC22: an escalated review unanswered after the grace period is removed through the
        AC16 release, with its own removal P30 by the scheduler; never renewed. None when the
        position is already being removed by someone (that removal stands)."""
        held = self.position(grant.position_id)
        if held is None or held.removal_pending:
            return None
        release = held.backing <= 1
        due = f"{grant.review_due_at:%Y-%m-%d}"
        change = Change()
        p30 = change.record(
            new_p30(
                facts,
                self.user_id,
                action="removal",
                kind=AccessKind.ABSENCE,
                unit_ids=(held.unit_id,),
                requested_by=SCHEDULER,
                approved_by=None,
                reason=(
                    f"six-monthly review due {due} unanswered after {grace_working_days} working "
                    "days: removed under the overdue-review policy (AC22)"
                ),
                discussion_held=False,
                discussed_with=None,
                state="pending" if release else "complete",
                actioned_by=SCHEDULER,
                actioned_at=facts.now,
                position_id=held.position_id,
                grant_id=grant.grant_id,
            )
        )
        change.grant_updates.append((grant.grant_id, {"lapsed_p30_id": p30.p30_id}))
        assert grant.review_due_at is not None  # only absence-related records are reviewed
        change.events.append(
            AbsenceReviewLapsed(
                grant_id=grant.grant_id,
                user_id=self.user_id,
                position_id=held.position_id,
                review_due_at=grant.review_due_at,
                p30_id=p30.p30_id,
            )
        )
        return change.then(
            carry_out_removal(
                facts, self.user_id, held, grant.grant_id, p30.p30_id, None, release=release
            )
        )

    # --- Current position (AC17) ---------------------------------------------------------------

    def change_position(self, actor_id: str, position_id: str) -> Change:
        """AC17: the user switches to a position they hold (not one being removed)."""
        check_change_position(actor_id, self, position_id)
        primary = self.primary
        change = Change(current=[CurrentPosition(self.user_id, position_id)])
        change.events.append(
            CurrentPositionChanged(
                user_id=self.user_id,
                position_id=position_id,
                previous_position_id=self.current_position_id
                or (primary.position_id if primary else None),
            )
        )
        return change

    # --- Shared steps ---------------------------------------------------------------------------

    def _submit_removal(
        self,
        facts: Facts,
        held: Holding,
        grant: Grant,
        history: RemovalHistory,
        *,
        reason: str,
        discussion_held: bool,
        approver_id: str | None,
        approver: Holdings | None,
        successor_position_id: str | None,
        via_review: bool = False,
    ) -> Change:
        """AC08/AC15 decide who may ask; AC20: the removal P30 is submitted for the access team,
        who action it (a failed release of work is asked for again at once, under its P30)."""
        plan = plan_removal(
            facts.actor,
            self,
            facts.units,
            held.position_id,
            grant.kind,
            set_up_by_line_manager=history.set_up_by_line_manager,
            discussion_held=discussion_held,
            via_review=via_review,
        )
        if plan.retry:
            return retry_release(facts, self.user_id, held, history.failed, successor_position_id)
        if approver_id:
            check_approver(
                approver,
                approver_id=approver_id,
                requester_id=facts.actor_id,
                user_id=self.user_id,
            )
        change = Change()
        change.record(
            new_p30(
                facts,
                self.user_id,
                action="removal",
                kind=grant.kind,
                unit_ids=(held.unit_id,),
                approved_by=approver_id,
                reason=reason,
                discussion_held=discussion_held,
                discussed_with=approver_id,
                state="submitted",
                position_id=held.position_id,
                grant_id=grant.grant_id,
                successor_position_id=successor_position_id,
            )
        )
        return change

    def _grant(
        self,
        change: Change,
        now: datetime,
        unit_id: str,
        kind: AccessKind,
        record: P30,
        *,
        emergency: bool = False,
    ) -> str:
        """Adds a record backing the user's position in the unit; the position is granted (and
        published) only if the user did not already hold it. Returns its id."""
        position_id = secondary_position_id(self.user_id, unit_id)
        primary = self.primary
        assert primary is not None
        role = primary.role
        if self.held(unit_id) is None:
            position = Position(position_id, self.user_id, unit_id, role, kind, emergency)
            change.granted.append((position, now))
            change.events.append(
                PositionGranted(
                    user_id=self.user_id,
                    position_id=position_id,
                    unit_id=unit_id,
                    role=role,
                    kind=kind,
                    p30_id=record.p30_id,
                    emergency=emergency,
                )
            )
        grant_id = uuid.uuid5(record.p30_id, f"grant:{unit_id}")  # one per P30 and position
        due = review_due(now) if kind is AccessKind.ABSENCE else None
        change.grants.append(
            Grant(
                grant_id=grant_id,
                user_id=self.user_id,
                position_id=position_id,
                kind=kind,
                p30_id=record.p30_id,
                emergency=emergency,
                state="active",
                granted_at=now,
                review_due_at=due,
            )
        )
        change.events.append(
            AccessGrantRecorded(
                grant_id=grant_id,
                user_id=self.user_id,
                position_id=position_id,
                unit_id=unit_id,
                kind=kind,
                p30_id=record.p30_id,
                emergency=emergency,
                review_due_at=due,
                warnings=list(record.warnings if not emergency else ()),
            )
        )
        return position_id


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


def secondary_position(user: Holdings, position_id: str) -> Holding:
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


def check_change_position(actor_id: str, user: Holdings, position_id: str) -> Holding:
    """AC17: a user switches only to a position they hold (and not one being removed)."""
    if actor_id != user.user_id:
        raise RuleViolation("AC17", "only the user can change their own current position")
    held = user.position(position_id)
    if held is None or held.removal_pending:
        raise RuleViolation("AC17", f"{user.user_id} does not hold position {position_id}")
    return held


def telephony_position(user: Holdings) -> Holding | None:
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


def team_view_position(user_id: str, held: Holding | None) -> Holding:
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


# --- The procedure's shared steps (the Holdings methods and the access scheduler use them) ---

SCHEDULER = "access-scheduler"  # who the P30 names for what the scheduler does (AC21, AC22)


@dataclass(frozen=True)
class RemovalHistory:
    """What a removal is decided with besides the holdings: the line manager of whoever set the
    record up (AC15) and the position's latest failed release, if any (AC16's retry)."""

    set_up_by_line_manager: str | None = None
    failed: Release | None = None


def new_p30(
    facts: Facts,
    user_id: str,
    *,
    action: str,
    kind: AccessKind,
    unit_ids: tuple[str, ...],
    approved_by: str | None,
    reason: str,
    discussion_held: bool,
    discussed_with: str | None,
    state: str,
    requested_by: str | None = None,
    emergency: bool = False,
    warnings: tuple[str, ...] = (),
    **extra: Any,
) -> P30:
    """AC04: a new P30 record, its id from the decision's seed."""
    return P30(
        p30_id=facts.id("p30"),
        user_id=user_id,
        action=action,
        kind=kind,
        unit_ids=unit_ids,
        requested_by=facts.actor_id if requested_by is None else requested_by,
        approved_by=approved_by,
        reason=reason,
        discussion_held=discussion_held,
        discussed_with=discussed_with,
        state=state,
        emergency=emergency,
        deadline=None,
        warnings=warnings,
        recorded_at=facts.now,
        **extra,
    )


def team_p30(
    facts: Facts,
    user: Holdings,
    p30_id: uuid.UUID,
    record: P30 | None,
    allowed: frozenset[str],
    rule: str,
) -> P30:
    """The P30 the access team acts on: only by the access team, never by its requester or
    approver, and only in a state that allows it (AC20, AC21)."""
    if record is None or record.user_id != user.user_id:
        raise RuleViolation(rule, f"no P30 {p30_id} for {user.user_id}")
    check_actioner(
        facts.actor,
        facts.units,
        actor_id=facts.actor_id,
        requested_by=record.requested_by,
        approved_by=record.approved_by,
        user_id=user.user_id,
        rule=rule,
    )
    check_p30_state(record.state, allowed, rule)
    return record


def carry_out_removal(
    facts: Facts,
    user_id: str,
    held: Holding,
    grant_id: uuid.UUID,
    p30_id: uuid.UUID,
    successor_position_id: str | None,
    *,
    release: bool,
) -> Change:
    """AC16: the last record's removal releases the position's work first; otherwise only the
    record ends and the P30 is complete at once."""
    if release:
        return request_release(facts, user_id, held, grant_id, p30_id, successor_position_id)
    change = Change(grant_updates=[_ended(grant_id, p30_id, facts.now)])
    change.events.append(
        AccessGrantEnded(
            grant_id=grant_id,
            user_id=user_id,
            position_id=held.position_id,
            p30_id=p30_id,
            position_kept=True,
        )
    )
    return change


def _ended(grant_id: uuid.UUID, p30_id: uuid.UUID, now: datetime) -> tuple[uuid.UUID, Values]:
    return grant_id, {"state": "ended", "ended_at": now, "ended_by_p30_id": p30_id}


def request_release(
    facts: Facts,
    user_id: str,
    held: Holding,
    grant_id: uuid.UUID,
    p30_id: uuid.UUID,
    successor_position_id: str | None,
) -> Change:
    """AC16 saga, first step: the position is pending removal until allocation answers."""
    release = Release(
        release_id=facts.id("release"),
        user_id=user_id,
        position_id=held.position_id,
        grant_id=grant_id,
        p30_id=p30_id,
        successor_position_id=successor_position_id,
        state="requested",
        requested_at=facts.now,
    )
    change = Change(
        positions=[(held.position_id, {"state": "removal_pending", "release_failed": False})],
        releases=[release],
    )
    change.events.append(
        PositionReleaseRequested(
            release_id=release.release_id,
            user_id=user_id,
            position_id=held.position_id,
            successor_position_id=successor_position_id,
        )
    )
    return change


def retry_release(
    facts: Facts,
    user_id: str,
    held: Holding,
    failed: Release | None,
    successor_position_id: str | None,
) -> Change:
    """AC16: the pending removal's release failed; ask allocation again under the same P30."""
    if failed is None:
        raise RuleViolation("AC16", f"no failed release to retry for {held.position_id}")
    change = Change(p30s=[(failed.p30_id, {"failure_reason": None})])
    return change.then(
        request_release(facts, user_id, held, failed.grant_id, failed.p30_id, successor_position_id)
    )


def work_released(
    release: Release | None,
    now: datetime,
    moved: Sequence[Mapping[str, object]],
    *,
    last: bool = True,
) -> Change | None:
    """AC16 saga, last step: allocation moved the work; now the access goes, with its P30.
    None when the release is not ours or already answered (the saga completes once).

    TR08: allocation answers a large release in parts, in order; each part's items are added
    to the release's `moved` (once each, by work item, so a part read twice changes nothing)
    and only the last part (`last`) completes the removal, with every part's items."""
    if release is None or release.state != "requested":
        return None
    so_far = {str(m["work_item_id"]): m for m in release.moved}
    so_far.update((str(m["work_item_id"]), m) for m in moved)
    every = [dict(m) for m in so_far.values()]
    if not last:
        return Change(release_updates=[(release.release_id, {"moved": every})])
    change = Change(
        release_updates=[
            (
                release.release_id,
                {"state": "released", "reason": None, "moved": every, "completed_at": now},
            )
        ],
        grant_updates=[_ended(release.grant_id, release.p30_id, now)],
        positions=[(release.position_id, {"state": "removed", "removed_at": now})],
        p30s=[(release.p30_id, {"state": "complete", "failure_reason": None, "closed_at": now})],
        current=[CurrentPosition(release.user_id, None, only_if=release.position_id)],
    )
    change.events.append(
        PositionRevoked(
            user_id=release.user_id, position_id=release.position_id, p30_id=release.p30_id
        )
    )
    return change


def work_release_failed(
    release: Release | None, now: datetime, *, user_id: str, position_id: str, reason: str
) -> Change | None:
    """AC16: the release failed; the removal stays pending with the reason, the access stays
    (and the removal may be asked for again: `retry_release`)."""
    if release is None or release.state != "requested":
        return None
    change = Change(
        release_updates=[
            (release.release_id, {"state": "failed", "reason": reason, "completed_at": now})
        ],
        p30s=[(release.p30_id, {"failure_reason": reason})],
        positions=[(release.position_id, {"release_failed": True})],
    )
    change.events.append(
        PositionRemovalFailed(
            release_id=release.release_id,
            user_id=user_id,
            position_id=position_id,
            reason=reason,
        )
    )
    return change


def grant_scheduled(
    facts: Facts,
    record: P30,
    user: Holdings | None,
    *,
    absent: Holdings | None,
    holders: Sequence[tuple[str, Role]],
) -> Change:
    """AC21: an emergency grant whose time scale has come, made as the access team answered
    (the P30 names who answered); one no longer possible is refused with the rule."""
    (unit_id,) = record.unit_ids
    try:
        if user is None:
            raise RuleViolation("AC01", f"unknown user {record.user_id!r}")
        check_emergency_need(user.user_id, absent, unit_id, holders)
        recheck_grant(user, facts.units, [unit_id])
    except RuleViolation as refused:
        reason = f"{refused.rule}: {refused.reason}"
        change = Change(
            p30s=[
                (
                    record.p30_id,
                    {"state": "refused", "refused_reason": reason, "closed_at": facts.now},
                )
            ]
        )
        change.events.append(
            P30Refused(
                p30_id=record.p30_id,
                user_id=record.user_id,
                requested_by=record.requested_by,
                refused_by=SCHEDULER,
                reason=reason,
            )
        )
        return change
    return user.grant_emergency(facts.now, record, actioned_by=record.actioned_by or SCHEDULER)


def review_notice(
    grant: Grant, flag: str, *, responsible: Sequence[str], escalate_to: Sequence[str]
) -> Change:
    """AC09: a review falling due is announced to the TL/SMs responsible (AC08); an overdue one
    is escalated to their line managers. Each flag is raised once (`review_flag`)."""
    assert grant.review_due_at is not None
    change = Change()
    if flag == "due":
        change.grant_updates.append((grant.grant_id, {"review_due_flagged": True}))
        change.events.append(
            AbsenceReviewDue(
                grant_id=grant.grant_id,
                user_id=grant.user_id,
                position_id=grant.position_id,
                review_due_at=grant.review_due_at,
                responsible=list(responsible),
            )
        )
        return change
    change.grant_updates.append(
        (grant.grant_id, {"review_due_flagged": True, "review_overdue_flagged": True})
    )
    change.events.append(
        AbsenceReviewOverdue(
            grant_id=grant.grant_id,
            user_id=grant.user_id,
            position_id=grant.position_id,
            review_due_at=grant.review_due_at,
            responsible=list(responsible),
            escalate_to=sorted(set(escalate_to)),
        )
    )
    return change


def emergency_p30_overdue(record: P30, *, escalate_to: str | None) -> Change:
    """AC11: an outstanding emergency P30 past its deadline is flagged once and escalated to
    the requester's line manager."""
    assert record.deadline is not None
    change = Change(p30s=[(record.p30_id, {"overdue_flagged": True})])
    change.events.append(
        EmergencyP30Overdue(
            p30_id=record.p30_id,
            user_id=record.user_id,
            requested_by=record.requested_by,
            escalate_to=escalate_to,
            deadline=record.deadline,
        )
    )
    return change


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

    def change_id(self, command_id: uuid.UUID, change: DirectoryChange) -> uuid.UUID:
        """The audit row's id: the same when the load is replayed (TR03)."""
        return uuid.uuid5(command_id, f"{change.entity}:{change.entity_id}")


def directory_events(load: LoadDirectory) -> list[Event]:
    """What a decided load publishes for the other services' projections: every unit, user and
    primary position it names (changed or not), then the load itself."""
    events: list[Event] = [
        UnitDefined(**unit.model_dump(exclude={"functionally_unique"})) for unit in load.units
    ]
    events += [UserRegistered(**user.model_dump()) for user in load.users]
    events += [
        PositionGranted(
            user_id=p.user_id,
            position_id=p.position_id,
            unit_id=p.unit_id,
            role=p.role,
            kind=AccessKind.PRIMARY,
        )
        for p in load.positions
    ]
    events.append(
        DirectoryLoaded(
            directory_id=load.directory_id,
            units=len(load.units),
            users=len(load.users),
            positions=len(load.positions),
        )
    )
    return events


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
