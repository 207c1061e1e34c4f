"""The access rules as pure functions (no I/O), and a property test comparing the domain against
a small independent model of the rules over random sequences of grants, reviews, work and
removals."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.access import AccessKind, Role
from services.access import domain
from services.access.domain import Held, Holdings, Unit
from services.shared.rules import RuleViolation

NOW = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
NAMED = ["special", "jud-rev", "escal", "appeals"]
CODES = dict(zip(NAMED, domain.HIERARCHICAL_SEGMENT_CODES, strict=True))
TEAMS = [f"team-{n}" for n in range(1, 17)]

UNITS: dict[str, Unit] = {
    "cmg": Unit("cmg", "Case group"),
    "enforcement": Unit("enforcement", "Enforcement", "cmg", "FS_GB_CMENF_000_ENFORCEMENT"),
    "international": Unit("international", "International", "cmg", "X", functionally_unique=True),
    **{s: Unit(s, s, "cmg", CODES[s]) for s in NAMED},
    "team-appeals": Unit("team-appeals", "Appeals team", "appeals"),
    "tribunal": Unit("tribunal", "Tribunal liaison", "appeals", functionally_unique=True),
    **{t: Unit(t, t, "enforcement") for t in TEAMS},
}


def person(
    user_id: str, unit_id: str, role: Role, *, cleared: bool = True, manager: str | None = None
) -> Holdings:
    primary = Held(f"pos-{user_id}", unit_id, role, AccessKind.PRIMARY)
    return Holdings(user_id, cleared, manager, (primary,))


SM = person("sm", "enforcement", Role.SEGMENT_MANAGER, manager="director")
TL1 = person("tl-1", "team-1", Role.TEAM_LEADER, manager="sm")
TL2 = person("tl-2", "team-2", Role.TEAM_LEADER, manager="sm")
TL_UNCLEARED = person("tl-3", "team-3", Role.TEAM_LEADER, cleared=False, manager="sm")
CW = person("cw", "team-1", Role.CASEWORKER, manager="tl-1")
CW_UNCLEARED = person("cw-2", "team-1", Role.CASEWORKER, cleared=False, manager="tl-1")
TL_APPEALS = person("tl-appeals", "team-appeals", Role.TEAM_LEADER, manager="sm-appeals")
SO = person("so", "team-2", Role.SENIOR_OFFICER)


def with_secondary(user: Holdings, *units: str, kind: AccessKind = AccessKind.ABSENCE) -> Holdings:
    extra = tuple(
        Held(domain.secondary_position_id(user.user_id, u), u, user.positions[0].role, kind, 1)
        for u in units
    )
    return replace(user, positions=user.positions + extra)


def violation(rule: str) -> Any:
    return pytest.raises(RuleViolation, match=f"^{rule}:")


def absence(actor: Holdings, user: Holdings, *units: str, discussed: bool = True) -> None:
    domain.plan_absence_grant(
        actor, user, UNITS, list(units), discussion_held=discussed, emergency=False
    )


def test_ac01_at_most_ten_positions_in_all() -> None:
    nine = with_secondary(TL2, *TEAMS[2:10])
    assert len(nine.positions) == 9
    assert domain.check_limits(nine, ["team-11"]) == 10
    ten = with_secondary(nine, "team-11")
    with violation("AC01"):
        domain.check_limits(ten, ["team-12"])
    # a position already held does not count twice
    assert domain.check_limits(ten, ["team-11"]) == 10


def test_ac02_more_than_two_positions_needs_clearance() -> None:
    one = with_secondary(TL_UNCLEARED, "team-4")
    with violation("AC02"):
        domain.check_limits(one, ["team-5"])
    assert domain.check_limits(with_secondary(TL2, "team-4"), ["team-5"]) == 3


def test_ac03_primary_unit_is_not_secondary_access() -> None:
    with violation("AC03"):
        absence(SM, TL2, "team-2")


def test_ac05_telephony_is_the_primary_position() -> None:
    held = domain.telephony_position(with_secondary(TL2, "team-4"))
    assert held is not None and held.position_id == "pos-tl-2"


def test_ac06_absence_access_only_for_tl_and_sm() -> None:
    with violation("AC06"):
        absence(SM, SO, "team-4")


def test_ac07_caseworker_is_not_given_absence_access() -> None:
    with violation("AC07"):
        absence(SM, CW, "team-2")


def test_ac08_only_primary_tl_sm_of_the_primary_segment_with_discussion() -> None:
    absence(SM, TL2, "team-4")
    with violation("AC08"):  # another team's TL is not of tl-2's primary segment
        absence(TL1, TL2, "team-4")
    with violation("AC08"):
        absence(TL_APPEALS, TL2, "team-4")
    with violation("AC08"):
        absence(TL2, TL2, "team-4")
    with violation("AC08"):
        absence(SM, TL2, "team-4", discussed=False)
    # the emergency path records the discussion with the P30 afterwards
    domain.plan_absence_grant(SM, TL2, UNITS, ["team-4"], discussion_held=False, emergency=True)


def test_ac09_review_due_six_months_on_flagged_then_escalated_once() -> None:
    due = domain.review_due(NOW)
    assert due == datetime(2026, 7, 31, 9, 0, tzinfo=UTC)
    assert domain.review_due(datetime(2026, 8, 31, tzinfo=UTC)) == datetime(2027, 2, 28, tzinfo=UTC)
    early = due - domain.REVIEW_NOTICE - timedelta(seconds=1)
    assert domain.review_flag(due, early, due_flagged=False, overdue_flagged=False) is None
    notice = due - domain.REVIEW_NOTICE
    assert domain.review_flag(due, notice, due_flagged=False, overdue_flagged=False) == "due"
    assert domain.review_flag(due, notice, due_flagged=True, overdue_flagged=False) is None
    assert domain.review_flag(due, due, due_flagged=True, overdue_flagged=False) == "overdue"
    assert domain.review_flag(due, due, due_flagged=True, overdue_flagged=True) is None


def test_ac09_only_absence_access_is_reviewed_by_the_responsible_tl_sm() -> None:
    user = with_secondary(TL2, "team-4")
    domain.check_review(SM, user, UNITS, AccessKind.ABSENCE)
    with violation("AC09"):
        domain.check_review(TL_APPEALS, user, UNITS, AccessKind.ABSENCE)
    with violation("AC09"):
        domain.check_review(SM, user, UNITS, AccessKind.HIERARCHICAL)


def test_ac10_several_absence_positions_on_one_p30_within_ten() -> None:
    absence(SM, TL2, *TEAMS[2:11])  # nine: ten with the primary
    with violation("AC10"):
        absence(SM, TL2, *TEAMS[2:12])


def test_ac11_emergency_p30_deadline_overdue_and_lodging() -> None:
    deadline = domain.p30_deadline(NOW)
    assert deadline > NOW
    assert not domain.p30_overdue(deadline, deadline - timedelta(seconds=1), flagged=False)
    assert domain.p30_overdue(deadline, deadline, flagged=False)
    assert not domain.p30_overdue(deadline, deadline, flagged=True)
    domain.check_lodge("outstanding", True, True)
    with violation("AC11"):
        domain.check_lodge("complete", True, True)
    with violation("AC08"):
        domain.check_lodge("outstanding", True, False)


def hier(actor: Holdings, user: Holdings, *units: str, agreed: Holdings = TL_APPEALS) -> object:
    return domain.plan_hierarchical_grant(actor, agreed, user, UNITS, list(units))


def test_ac12_lower_segment_tl_completes_agreed_with_the_higher_segment() -> None:
    assert hier(TL1, CW, "team-appeals") == domain.HierarchicalPlan("team-appeals", ())
    with violation("AC12"):
        hier(TL_APPEALS, CW, "team-appeals")
    with violation("AC12"):
        hier(TL1, CW, "team-appeals", agreed=TL2)


def test_ac13_only_into_the_named_segments_functionally_unique_warned() -> None:
    with violation("AC13"):
        hier(TL1, CW, "international")
    with violation("AC13"):
        hier(TL1, CW, "team-2")
    plan = domain.plan_hierarchical_grant(TL1, TL_APPEALS, CW, UNITS, ["tribunal"])
    assert plan.warnings and "functionally unique" in plan.warnings[0]


def test_ac14_one_position_at_a_time() -> None:
    with violation("AC14"):
        hier(TL1, CW, "team-appeals", "appeals")


def test_ac15_hierarchical_removed_only_by_line_manager_of_the_tl() -> None:
    user = with_secondary(CW, "team-appeals", kind=AccessKind.HIERARCHICAL)
    position = domain.secondary_position_id("cw", "team-appeals")
    for actor in (TL1, TL_APPEALS, CW):
        with violation("AC15"):
            domain.plan_removal(
                actor,
                user,
                UNITS,
                position,
                AccessKind.HIERARCHICAL,
                set_up_by_line_manager="sm",
                discussion_held=True,
            )
    plan = domain.plan_removal(
        SM,
        user,
        UNITS,
        position,
        AccessKind.HIERARCHICAL,
        set_up_by_line_manager="sm",
        discussion_held=False,
    )
    assert plan.release


def remove(user: Holdings, position: str) -> domain.RemovalPlan:
    return domain.plan_removal(
        SM,
        user,
        UNITS,
        position,
        AccessKind.ABSENCE,
        set_up_by_line_manager=None,
        discussion_held=True,
    )


def test_ac16_failed_release_can_be_asked_again() -> None:
    position = domain.secondary_position_id("tl-2", "team-4")
    once = with_secondary(TL2, "team-4")
    failed = replace(
        once,
        positions=(
            once.positions[0],
            replace(once.positions[1], removal_pending=True, release_failed=True),
        ),
    )
    plan = remove(failed, position)
    assert plan.release and plan.retry
    with violation("AC16"):
        absence(SM, failed, "team-4")


def test_ac16_last_record_needs_release_other_records_keep_the_position() -> None:
    position = domain.secondary_position_id("tl-2", "team-4")
    backed_twice = replace(
        TL2,
        positions=(
            TL2.positions[0],
            Held(position, "team-4", Role.TEAM_LEADER, AccessKind.ABSENCE, 2),
        ),
    )
    assert not remove(backed_twice, position).release
    once = with_secondary(TL2, "team-4")
    assert remove(once, position).release
    pending = replace(
        once, positions=(once.positions[0], replace(once.positions[1], removal_pending=True))
    )
    with violation("AC16"):
        remove(pending, position)
    with violation("AC16"):
        absence(SM, pending, "team-4")


def test_ac17_switch_only_to_own_held_position() -> None:
    user = with_secondary(TL2, "team-4")
    position = domain.secondary_position_id("tl-2", "team-4")
    assert domain.check_change_position("tl-2", user, position).unit_id == "team-4"
    with violation("AC17"):
        domain.check_change_position("tl-1", user, position)
    with violation("AC17"):
        domain.check_change_position("tl-2", user, "pos-tl-1")


def test_ac18_completing_from_the_list_view_is_refused() -> None:
    with violation("AC18"):
        domain.refuse_completion_from_list_view()


# --- Property test: the domain against an independent model --------------------------------


@dataclass
class Model:
    """An independent, deliberately naive statement of the limits and of the removal saga:
    sets of units per user, counted records per unit, pending releases, work per position."""

    cleared: dict[str, bool]
    role: dict[str, Role]
    primary: dict[str, str]
    units: dict[str, dict[str, int]] = field(default_factory=dict)  # user -> unit -> records
    pending: set[tuple[str, str]] = field(default_factory=set)
    work: dict[tuple[str, str], int] = field(default_factory=dict)

    def allows_grant(self, user: str, units: list[str], absence: bool) -> bool:
        held = self.units.setdefault(user, {})
        if absence and self.role[user] not in (Role.TEAM_LEADER, Role.SEGMENT_MANAGER):
            return False
        if len(set(units)) != len(units) or self.primary[user] in units:
            return False
        if any((user, u) in self.pending for u in units):
            return False
        total = 1 + len(set(held) | set(units))
        return total <= 10 and (total <= 2 or self.cleared[user])


USERS = {"tl-1": TL1, "tl-2": TL2, "tl-3": TL_UNCLEARED, "cw": CW, "cw-2": CW_UNCLEARED}
GRANTABLE = TEAMS[3:]  # none is a primary unit of USERS
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("absence"),
            st.sampled_from(["tl-1", "tl-2", "tl-3", "cw"]),
            st.lists(st.sampled_from(GRANTABLE), min_size=1, max_size=10, unique=True),
        ),
        st.tuples(st.just("hier"), st.sampled_from(["cw", "cw-2"]), st.just(["team-appeals"])),
        st.tuples(st.just("remove"), st.sampled_from(sorted(USERS)), st.integers(0, 9)),
        st.tuples(st.just("review"), st.sampled_from(sorted(USERS)), st.integers(0, 9)),
        st.tuples(st.just("work"), st.sampled_from(sorted(USERS)), st.integers(0, 9)),
        st.tuples(st.just("release"), st.sampled_from(sorted(USERS)), st.booleans()),
    ),
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_ac01_ac02_ac16_any_sequence_keeps_limits_and_never_leaves_work_on_removed_positions(
    sequence: list[tuple[str, str, object]],
) -> None:
    state = {u: h for u, h in USERS.items()}
    records: dict[str, list[AccessKind]] = {}  # position -> kinds of its active records
    work: dict[str, int] = {}  # position -> items held
    removed: set[str] = set()
    model = Model(
        cleared={u: h.security_clearance for u, h in USERS.items()},
        role={u: h.positions[0].role for u, h in USERS.items()},
        primary={u: h.positions[0].unit_id for u, h in USERS.items()},
    )

    def refresh(user: str) -> None:
        base = state[user].positions[0]
        secondary = tuple(
            replace(p, backing=len(records.get(p.position_id, [])))
            for p in state[user].positions[1:]
        )
        state[user] = replace(state[user], positions=(base, *secondary))

    def grant(user: str, units: list[str], kind: AccessKind) -> None:
        for unit in units:
            pid = domain.secondary_position_id(user, unit)
            if state[user].held(unit) is None:
                held = Held(pid, unit, state[user].positions[0].role, kind)
                state[user] = replace(state[user], positions=(*state[user].positions, held))
                removed.discard(pid)
            records.setdefault(pid, []).append(kind)
            model.units.setdefault(user, {})[unit] = model.units[user].get(unit, 0) + 1
        refresh(user)

    for op, user, arg in sequence:
        secondary = state[user].positions[1:]
        if op in ("absence", "hier"):
            units = list(arg)  # type: ignore[call-overload]
            absence_kind = op == "absence"
            allowed = model.allows_grant(user, units, absence_kind)
            try:
                if absence_kind:
                    absence(SM, state[user], *units)
                else:
                    hier(TL1, state[user], *units)
            except RuleViolation:
                assert not allowed, (op, user, units)
                continue
            assert allowed, (op, user, units)
            grant(user, units, AccessKind.ABSENCE if absence_kind else AccessKind.HIERARCHICAL)
        elif op in ("remove", "review") and secondary:
            held = secondary[int(arg) % len(secondary)]  # type: ignore[call-overload]
            kinds = records[held.position_id]
            kind = kinds[-1]
            try:
                if op == "review":
                    domain.check_review(SM, state[user], UNITS, kind)
                plan = domain.plan_removal(
                    SM,
                    state[user],
                    UNITS,
                    held.position_id,
                    kind,
                    set_up_by_line_manager="sm",
                    discussion_held=True,
                    via_review=op == "review",
                )
            except RuleViolation:
                in_flight = held.removal_pending and not held.release_failed
                assert in_flight or (op == "review" and kind is not AccessKind.ABSENCE)
                continue
            assert not held.removal_pending or held.release_failed
            assert plan.retry == held.release_failed
            assert plan.release == (len(kinds) == 1 or plan.retry)
            if plan.release:
                state[user] = replace(
                    state[user],
                    positions=tuple(
                        replace(p, removal_pending=True, release_failed=False) if p == held else p
                        for p in state[user].positions
                    ),
                )
                model.pending.add((user, held.unit_id))
            else:
                kinds.pop()
                model.units[user][held.unit_id] -= 1
                refresh(user)
        elif op == "work":
            # allocation assigns only to active positions that are not being removed
            choices = [p for p in state[user].positions if not p.removal_pending]
            target = choices[int(arg) % len(choices)]  # type: ignore[call-overload]
            work[target.position_id] = work.get(target.position_id, 0) + 1
        elif op == "release":
            pending = [
                p for p in state[user].positions if p.removal_pending and not p.release_failed
            ]
            if not pending:
                continue
            held = pending[0]
            if arg:  # allocation moved the work to the hopper; then the access goes
                work.pop(held.position_id, None)
                records.pop(held.position_id, None)
                state[user] = replace(
                    state[user], positions=tuple(p for p in state[user].positions if p != held)
                )
                removed.add(held.position_id)
                model.pending.discard((user, held.unit_id))
                del model.units[user][held.unit_id]
            else:  # a failed release leaves the removal pending and the access in place
                state[user] = replace(
                    state[user],
                    positions=tuple(
                        replace(p, release_failed=True) if p == held else p
                        for p in state[user].positions
                    ),
                )

        for name, holdings in state.items():
            count = len(holdings.positions)
            assert count <= domain.MAX_POSITIONS
            assert count <= domain.UNCLEARED_MAX_POSITIONS or holdings.security_clearance
            assert count == 1 + len(model.units.get(name, {}))
            for p in holdings.positions[1:]:
                assert records[p.position_id], "a held secondary position has a backing record"
        assert not any(work.get(p) for p in removed), "work left on a removed position"
