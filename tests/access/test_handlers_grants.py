"""Handler unit tests, without the broker or the database: standing access through its P30
(AC06-AC08, AC12-AC13, AC20), on fake repositories."""

from __future__ import annotations

import pytest

from contracts.access import (
    AccessGrantRecorded,
    AccessKind,
    ActionP30,
    P30Actioned,
    P30Recorded,
    P30Refused,
    PositionGranted,
    RefuseP30,
    RequestAbsenceAccess,
    RequestHierarchicalAccess,
)
from services.access.handlers import grants
from services.shared.rules import RuleViolation
from tests.access.fakes import FakeAccess, handle, p30


async def test_ac08_ac20_the_primary_sm_submits_an_absence_p30_for_the_access_team() -> None:
    repos = FakeAccess()
    cmd = RequestAbsenceAccess(
        user_id="tl-1", unit_ids=["team-2"], discussion_held=True, discussed_with="tl-2"
    )
    ctx = await handle(grants.request_absence_access, cmd, repos, actor="sm")
    (recorded,) = ctx.events
    assert isinstance(recorded, P30Recorded)
    assert (recorded.state, recorded.requested_by, recorded.approved_by) == (
        "submitted",
        "sm",
        "tl-2",
    )
    assert repos.change.granted == [] and repos.change.grants == []  # granted once actioned


@pytest.mark.parametrize(
    ("user_id", "actor", "discussed_with", "rule"),
    [
        ("cw", "tl-1", "tl-2", "AC07"),  # a caseworker's cases are moved instead
        ("tl-1", "tl-2", "sm", "AC08"),  # not the primary TL/SM of tl-1's segment
        ("tl-1", "sm", "cw", "AC20"),  # the approver is a TL/SM
        ("tl-1", "sm", "sm", "AC20"),  # and not the requester
    ],
)
async def test_ac07_ac08_ac20_who_asks_and_who_approves(
    user_id: str, actor: str, discussed_with: str, rule: str
) -> None:
    repos = FakeAccess()
    cmd = RequestAbsenceAccess(
        user_id=user_id, unit_ids=["team-2"], discussion_held=True, discussed_with=discussed_with
    )
    with pytest.raises(RuleViolation) as refused:
        await handle(grants.request_absence_access, cmd, repos, actor=actor)
    assert refused.value.rule == rule
    assert repos.changes == []  # decided before anything is written


async def test_ac12_ac13_hierarchical_access_only_into_the_named_segments() -> None:
    repos = FakeAccess()
    cmd = RequestHierarchicalAccess(user_id="tl-1", unit_ids=["appeals"], agreed_with="tl-appeals")
    ctx = await handle(grants.request_hierarchical_access, cmd, repos, actor="sm")
    (recorded,) = ctx.events
    assert isinstance(recorded, P30Recorded) and recorded.kind is AccessKind.HIERARCHICAL
    not_named = RequestHierarchicalAccess(user_id="tl-1", unit_ids=["team-2"], agreed_with="tl-2")
    with pytest.raises(RuleViolation, match=r"^AC13:"):
        await handle(grants.request_hierarchical_access, not_named, FakeAccess(), actor="sm")


async def test_ac20_the_access_team_actions_the_p30_and_the_access_is_granted() -> None:
    record = p30("tl-1", state="submitted")
    repos = FakeAccess(p30s=[record])
    ctx = await handle(
        grants.action_p30, ActionP30(user_id="tl-1", p30_id=record.p30_id), repos, actor="admin"
    )
    assert [type(e) for e in ctx.events] == [P30Actioned, PositionGranted, AccessGrantRecorded]
    ((position, _),) = repos.change.granted
    assert position.position_id == "tl-1@team-2" and position.kind == AccessKind.ABSENCE
    assert repos.change.p30s == [
        (
            record.p30_id,
            {
                "state": "complete",
                "actioned_by": "admin",
                "actioned_at": ctx.now,
                "closed_at": ctx.now,
            },
        )
    ]


@pytest.mark.parametrize("actor", ["sm", "tl-2", "tl-1"])  # requester, approver, the user
async def test_ac20_only_the_access_team_actions_never_who_asked_or_approved(actor: str) -> None:
    record = p30("tl-1", state="submitted")
    repos = FakeAccess(p30s=[record])
    with pytest.raises(RuleViolation, match=r"^AC20:"):
        await handle(
            grants.action_p30, ActionP30(user_id="tl-1", p30_id=record.p30_id), repos, actor=actor
        )
    assert repos.changes == []


async def test_ac20_a_refused_p30_grants_nothing_and_is_refused_once() -> None:
    record = p30("tl-1", state="submitted")
    repos = FakeAccess(p30s=[record])
    refuse = RefuseP30(user_id="tl-1", p30_id=record.p30_id, reason="not needed")
    ctx = await handle(grants.refuse_p30, refuse, repos, actor="admin")
    (refused,) = ctx.events
    assert isinstance(refused, P30Refused) and refused.requested_by == "sm"
    assert repos.change.granted == [] and repos.change.grants == []
    done = FakeAccess(p30s=[p30("tl-1", state="refused")])
    (record_done,) = done.p30s.records
    with pytest.raises(RuleViolation, match=r"^AC20:"):
        await handle(
            grants.refuse_p30,
            RefuseP30(user_id="tl-1", p30_id=record_done, reason="again"),
            done,
            actor="admin",
        )
