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

from contracts.access import (
    AccessKind,
    LoadDirectory,
    PrimaryPositionSpec,
    Role,
    UnitKind,
    UnitSpec,
    UserSpec,
)
from services.access import domain
from services.access.domain import DirectoryPosition, Holding, Holdings, Unit
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
    primary = Holding.of(user_id, f"pos-{user_id}", unit_id, role, AccessKind.PRIMARY)
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
        Holding.of(
            user.user_id,
            domain.secondary_position_id(user.user_id, u),
            u,
            user.positions[0].role,
            kind,
            1,
        )
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
    # DL03: flagged from ten working days before (Fri 31 Jul 2026: from Fri 17 Jul).
    early = datetime(2026, 7, 16, 23, 59, tzinfo=UTC)
    assert domain.review_flag(due, early, due_flagged=False, overdue_flagged=False) is None
    notice = datetime(2026, 7, 17, 0, 0, tzinfo=UTC)
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
            Holding.of("tl-2", position, "team-4", Role.TEAM_LEADER, AccessKind.ABSENCE, 2),
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
                held = Holding.of(user, pid, unit, state[user].positions[0].role, kind)
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


# --- The directory (TR03, AC01, AC02) --------------------------------------------------------

ADMIN_ROLES = frozenset({"directory-admin"})
DIR_UNITS: dict[str, Unit] = {
    "seg": Unit("seg", "Segment"),
    "hub": Unit("hub", "Hub Team", "seg"),
    "mgmt": Unit("mgmt", "Management Team", "seg"),
}


def dir_user(user_id: str, *, cleared: bool = False) -> UserSpec:
    return UserSpec(user_id=user_id, name=user_id.title(), security_clearance=cleared)


def dir_position(user_id: str, unit_id: str, role: Role, position_id: str = "") -> Any:
    return PrimaryPositionSpec(
        position_id=position_id or f"pos-{user_id}", user_id=user_id, unit_id=unit_id, role=role
    )


def held_by(user_id: str, unit_id: str, role: Role, **kw: Any) -> DirectoryPosition:
    kw.setdefault("kind", AccessKind.PRIMARY)
    position_id = kw.pop("position_id", f"pos-{user_id}")
    return DirectoryPosition(position_id, user_id, unit_id, role, **kw)


def today(*positions: DirectoryPosition, cleared: tuple[str, ...] = ()) -> domain.Directory:
    """The directory as it is: hub-1 a Hub Team worker and so-mgmt a Management Team Senior
    Officer, plus any other positions given."""
    held = (
        held_by("hub-1", "hub", Role.HUB_TEAM_WORKER),
        held_by("so-mgmt", "mgmt", Role.SENIOR_OFFICER),
        *positions,
    )
    users = {p.user_id for p in held}
    return domain.Directory(
        units=DIR_UNITS,
        unit_rows={},
        users={
            u: {
                "name": u.title(),
                "email": None,
                "line_manager_id": None,
                "security_clearance": u in cleared,
            }
            for u in users
        },
        positions={p.position_id: p for p in held},
    )


def load(*, units: Any = (), users: Any = (), positions: Any = ()) -> LoadDirectory:
    return LoadDirectory(units=list(units), users=list(users), positions=list(positions))


def plan(command: LoadDirectory, current: domain.Directory, **kw: Any) -> domain.DirectoryPlan:
    return domain.plan_directory_load(
        kw.get("roles", ADMIN_ROLES), kw.get("caller", "directory-admin"), command, current
    )


def test_tr03_only_a_directory_admin_or_an_hr_feed_loads_the_directory() -> None:
    command = load(
        users=[dir_user("new-1")], positions=[dir_position("new-1", "hub", Role.CASEWORKER)]
    )
    for roles in (frozenset(), frozenset({"operator", "integration-admin"})):
        with violation("TR03") as refused:
            plan(command, today(), roles=roles, caller="hub-1")
        assert "directory administrator or an HR feed" in refused.value.reason
    assert plan(command, today(), roles=frozenset({"directory-admin"})).authority == (
        "directory-admin",
    )
    assert plan(command, today(), roles=frozenset({"hr-feed"}), caller="hr").authority == (
        "hr-feed",
    )


def test_tr03_a_position_is_never_moved_to_another_user() -> None:
    command = load(positions=[dir_position("hub-1", "mgmt", Role.SENIOR_OFFICER, "pos-so-mgmt")])
    with violation("TR03") as refused:
        plan(command, today())
    assert "held by so-mgmt" in refused.value.reason and "never moved" in refused.value.reason


def test_tr03_secondary_positions_change_only_through_their_p30s() -> None:
    secondary = held_by(
        "so-mgmt", "hub", Role.SENIOR_OFFICER, position_id="sec-hub", kind=AccessKind.ABSENCE
    )
    command = load(positions=[dir_position("so-mgmt", "hub", Role.SENIOR_OFFICER, "sec-hub")])
    with violation("TR03") as refused:
        plan(command, today(secondary))
    assert "only through its P30 records" in refused.value.reason
    # nor may the directory make a position id of the secondary form (user@unit), nor a unit
    # id that would let one user's secondary position id be another's
    with violation("TR03"):
        plan(load(positions=[dir_position("hub-1", "hub", Role.CASEWORKER, "x@hub")]), today())
    with violation("TR03"):
        plan(load(units=[UnitSpec(unit_id="a@hub", name="A", kind=UnitKind.TEAM)]), today())


def test_tr03_positions_belong_to_existing_users_and_units_in_a_sound_hierarchy() -> None:
    with violation("TR03"):  # unknown user
        plan(load(positions=[dir_position("ghost", "hub", Role.CASEWORKER)]), today())
    with violation("TR03"):  # unknown unit
        plan(load(positions=[dir_position("hub-1", "nowhere", Role.CASEWORKER)]), today())
    with violation("TR03"):  # unknown parent
        plan(
            load(units=[UnitSpec(unit_id="t", name="T", kind=UnitKind.TEAM, parent_id="x")]),
            today(),
        )
    loop = [
        UnitSpec(unit_id="a", name="A", kind=UnitKind.SEGMENT, parent_id="b"),
        UnitSpec(unit_id="b", name="B", kind=UnitKind.SEGMENT, parent_id="a"),
    ]
    with violation("TR03"):
        plan(load(units=loop), today())
    # a unit, user and position created together in one load is fine
    created = plan(
        load(
            units=[UnitSpec(unit_id="north", name="North", kind=UnitKind.TEAM, parent_id="seg")],
            users=[dir_user("n-1")],
            positions=[dir_position("n-1", "north", Role.CASEWORKER)],
        ),
        today(),
    )
    assert [(c.entity, c.entity_id, c.action) for c in created.changes] == [
        ("unit", "north", "created"),
        ("user", "n-1", "created"),
        ("position", "pos-n-1", "created"),
    ]


def test_tr03_each_unit_user_and_position_is_named_once() -> None:
    twice = [dir_position("hub-1", "hub", Role.CASEWORKER)] * 2
    with violation("TR03"):
        plan(load(positions=twice), today())
    with violation("TR03"):
        plan(load(users=[dir_user("hub-1"), dir_user("hub-1")]), today())


def test_tr03_the_caller_never_changes_their_own_record_or_positions() -> None:
    current = today(held_by("admin", "hub", Role.HUB_TEAM_WORKER))
    with violation("TR03"):
        plan(load(users=[dir_user("admin", cleared=True)]), current, caller="admin")
    with violation("TR03"):
        plan(
            load(positions=[dir_position("admin", "mgmt", Role.SENIOR_OFFICER)]),
            current,
            caller="admin",
        )


def test_tr03_changes_are_listed_with_before_and_after_unchanged_ones_are_not() -> None:
    command = load(
        users=[dir_user("hub-1")],  # as it is
        positions=[
            dir_position("hub-1", "hub", Role.HUB_TEAM_WORKER),  # as it is
            dir_position("so-mgmt", "hub", Role.SENIOR_OFFICER),  # moved to another unit
        ],
    )
    (change,) = plan(command, today()).changes
    assert (change.entity, change.entity_id, change.action) == (
        "position",
        "pos-so-mgmt",
        "changed",
    )
    assert change.before is not None and change.before["unit_id"] == "mgmt"
    assert change.after["unit_id"] == "hub" and change.after["user_id"] == "so-mgmt"


def test_ac01_directory_user_holds_exactly_one_primary_position() -> None:
    # a second primary position for the Hub Team worker
    second = load(positions=[dir_position("hub-1", "mgmt", Role.SENIOR_OFFICER, "pos-hub-1-so")])
    with violation("AC01") as refused:
        plan(second, today())
    assert "one primary position" in refused.value.reason
    with violation("AC01"):  # a new user without any
        plan(load(users=[dir_user("nobody")]), today())
    # changing an existing user's record keeps the primary position they hold
    plan(load(users=[dir_user("hub-1", cleared=True)]), today())


def test_ac01_directory_keeps_ten_positions_at_most() -> None:
    secondaries = [
        held_by("tl", f"t{n}", Role.TEAM_LEADER, position_id=f"tl@t{n}", kind=AccessKind.ABSENCE)
        for n in range(10)
    ]
    current = replace(
        today(*secondaries, cleared=("tl",)),
        units={**DIR_UNITS, **{f"t{n}": Unit(f"t{n}", f"T{n}", "seg") for n in range(10)}},
    )
    with violation("AC01") as refused:
        plan(load(positions=[dir_position("tl", "hub", Role.TEAM_LEADER)]), current)
    assert "11 positions" in refused.value.reason


def test_ac02_directory_refuses_withdrawing_clearance_from_a_holder_of_three() -> None:
    secondaries = [
        held_by(
            "so-mgmt", u, Role.SENIOR_OFFICER, position_id=f"so-mgmt@{u}", kind=AccessKind.ABSENCE
        )
        for u in ("hub", "seg")
    ]
    current = today(*secondaries, cleared=("so-mgmt",))
    with violation("AC02") as refused:
        plan(load(users=[dir_user("so-mgmt", cleared=False)]), current)
    assert "3 positions" in refused.value.reason
    plan(load(users=[dir_user("so-mgmt", cleared=True)]), current)


def test_ac03_directory_does_not_move_a_primary_into_a_unit_held_as_secondary() -> None:
    secondary = held_by(
        "so-mgmt", "hub", Role.SENIOR_OFFICER, position_id="so-mgmt@hub", kind=AccessKind.ABSENCE
    )
    with violation("AC03"):
        plan(
            load(positions=[dir_position("so-mgmt", "hub", Role.SENIOR_OFFICER, "pos-so-mgmt")]),
            today(secondary),
        )


# --- The access team (AC20, AC21), overdue reviews (AC22), working days (DL03) ---------------

ACCESS_UNITS: dict[str, Unit] = {
    **UNITS,
    "flls": Unit("flls", "FLLS access team", kind=UnitKind.ACCESS_TEAM.value),
}
FLLS = person("flls-1", "flls", Role.ACCESS_ADMINISTRATOR)


def test_ac20_only_the_access_team_actions_and_never_its_requester_or_approver() -> None:
    def action(actor: Holdings, **names: str | None) -> None:
        who = {"requested_by": "sm", "approved_by": "tl-1", "user_id": "tl-2", **names}
        domain.check_actioner(
            actor,
            ACCESS_UNITS,
            actor_id=actor.user_id,
            requested_by=str(who["requested_by"]),
            approved_by=who["approved_by"],
            user_id=str(who["user_id"]),
        )

    action(FLLS)
    assert domain.is_access_team(FLLS, ACCESS_UNITS)
    assert not domain.is_access_team(SM, ACCESS_UNITS)
    with violation("AC20"):
        action(SM)  # the requester, and not in the access team
    with violation("AC20"):
        action(FLLS, requested_by="flls-1")
    with violation("AC20"):
        action(FLLS, approved_by="flls-1")
    with violation("AC20"):
        action(FLLS, user_id="flls-1")
    # Access-team membership by a position being removed does not count.
    leaving = replace(FLLS, positions=(replace(FLLS.positions[0], removal_pending=True),))
    assert not domain.is_access_team(leaving, ACCESS_UNITS)


def test_ac20_the_approver_is_a_tl_sm_other_than_the_requester_and_the_user() -> None:
    domain.check_approver(TL1, approver_id="tl-1", requester_id="sm", user_id="tl-2")
    with violation("AC20"):
        domain.check_approver(None, approver_id=None, requester_id="sm", user_id="tl-2")
    with violation("AC20"):
        domain.check_approver(CW, approver_id="cw", requester_id="sm", user_id="tl-2")
    with violation("AC20"):
        domain.check_approver(SM, approver_id="sm", requester_id="sm", user_id="tl-2")
    with violation("AC20"):
        domain.check_approver(TL2, approver_id="tl-2", requester_id="sm", user_id="tl-2")


def test_ac20_a_p30_is_actioned_or_refused_once_and_rechecked_when_actioned() -> None:
    domain.check_p30_state("submitted", domain.ACTIONABLE_STATES, "AC20")
    for state in ("complete", "refused", "pending", "requested"):
        with violation("AC20"):
            domain.check_p30_state(state, domain.ACTIONABLE_STATES, "AC20")
    with violation("AC21"):
        domain.check_p30_state("scheduled", domain.ANSWERABLE_STATES, "AC21")
    domain.check_p30_state("scheduled", domain.REFUSABLE_STATES, "AC20")
    # limits are checked again against what the user holds when the P30 is actioned
    domain.recheck_grant(TL2, UNITS, TEAMS[2:11])
    with violation("AC10"):
        domain.recheck_grant(with_secondary(TL2, "team-4"), UNITS, TEAMS[4:13])
    # a removal actioned: the last record releases the work first (AC16), others do not
    user = with_secondary(TL2, "team-4")
    position = domain.secondary_position_id("tl-2", "team-4")
    assert domain.removal_on_action(user, position) is True
    doubled = replace(user, positions=(user.positions[0], replace(user.positions[1], backing=2)))
    assert domain.removal_on_action(doubled, position) is False
    pending = replace(
        user, positions=(user.positions[0], replace(user.positions[1], removal_pending=True))
    )
    with violation("AC16"):
        domain.removal_on_action(pending, position)


def test_ac21_emergency_only_when_nobody_holds_the_absent_tls_unit() -> None:
    # tl-1 (team 1) is absent; tl-2 is to cover; nobody else holds team 1 as TL/SM.
    holders = [("tl-1", Role.TEAM_LEADER), ("cw", Role.CASEWORKER)]
    domain.check_emergency_need("tl-2", TL1, "team-1", holders)
    with violation("AC21"):  # someone already has access to the absent TL's work
        domain.check_emergency_need(
            "tl-2", TL1, "team-1", [*holders, ("sm-cover", Role.SEGMENT_MANAGER)]
        )
    with violation("AC21"):  # the absent user is not a TL/SM of that unit
        domain.check_emergency_need("tl-2", CW, "team-1", holders)
    with violation("AC21"):
        domain.check_emergency_need("tl-2", TL1, "team-2", holders)
    with violation("AC21"):
        domain.check_emergency_need("tl-2", None, "team-1", holders)
    with violation("AC21"):
        domain.check_emergency_need("tl-1", TL1, "team-1", holders)
    assert domain.grant_now(None, NOW)
    assert domain.grant_now(NOW, NOW)
    assert not domain.grant_now(NOW + timedelta(hours=3), NOW)


def test_ac22_overdue_review_removed_after_grace_only_under_the_remove_policy() -> None:
    due = datetime(2026, 7, 31, 9, 0, tzinfo=UTC)  # a Friday
    remove, escalate = domain.OverdueReviewPolicy.REMOVE, domain.OverdueReviewPolicy.ESCALATE
    end_of_grace = datetime(2026, 8, 7, 23, 59, 59, tzinfo=UTC)  # five working days on

    def lapsed(policy: domain.OverdueReviewPolicy, now: datetime, flagged: bool = True) -> bool:
        return domain.lapse_due(policy, due, now, grace_working_days=5, overdue_flagged=flagged)

    assert not lapsed(remove, end_of_grace - timedelta(seconds=1))
    assert lapsed(remove, end_of_grace)
    assert not lapsed(escalate, end_of_grace + timedelta(days=365))  # escalated only
    assert not lapsed(remove, end_of_grace, flagged=False)  # escalated first


def test_dl03_emergency_p30_deadline_and_review_notice_count_working_days() -> None:
    # Granted on Thursday 24 Dec 2026: Christmas, Boxing Day (substitute Mon 28) and the
    # weekend do not count; due at the close of Wednesday 30 Dec.
    granted = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)
    assert domain.p30_deadline(granted) == datetime(2026, 12, 30, 23, 59, 59, tzinfo=UTC)
    # Review due Tue 5 Jan 2027: ten working days before (the holidays skipped) is Thu 17 Dec,
    # well before the fourteen calendar days (22 Dec).
    due = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)
    before = datetime(2026, 12, 16, 12, 0, tzinfo=UTC)
    assert domain.review_flag(due, before, due_flagged=False, overdue_flagged=False) is None
    on = datetime(2026, 12, 17, 12, 0, tzinfo=UTC)
    assert domain.review_flag(due, on, due_flagged=False, overdue_flagged=False) == "due"
