"""Handler unit tests, without the broker or the database: removing secondary access (AC08,
AC15) and the release of its work (AC16 saga), on fake repositories."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from contracts.access import (
    AccessKind,
    P30Recorded,
    PositionReleaseRequested,
    PositionRemovalFailed,
    PositionRevoked,
    RequestAccessRemoval,
    Role,
)
from contracts.allocation import (
    BULK_EVENT_ITEMS,
    Owner,
    PositionWorkReleasedV2,
    PositionWorkReleaseFailed,
    StepType,
    WorkItemSnapshot,
    WorkState,
)
from services.access.handlers import removal
from services.access.records import CurrentPosition, Release
from services.shared.rules import RuleViolation
from tests.access.fakes import NOW, FakeAccess, agency, grant, handle, p30, person, with_secondary


def holding(kind: AccessKind, *, failed: bool = False) -> tuple[FakeAccess, Release]:
    """tl-1 holds team-2 by one record of `kind`, set up by sm; `failed`: its removal is
    pending after a failed release."""
    users = agency()
    users["director"] = person("director", "enforcement", Role.SEGMENT_MANAGER)
    users["tl-1"] = with_secondary(users["tl-1"], "team-2", kind, pending=failed)
    if failed:
        tl = users["tl-1"]
        users["tl-1"] = replace(
            tl, positions=(tl.positions[0], replace(tl.positions[1], release_failed=True))
        )
    set_up = p30("tl-1", state="complete", kind=kind)
    record = grant("tl-1", "tl-1@team-2", set_up.p30_id, kind=kind)
    release = Release(
        release_id=uuid.uuid4(),
        user_id="tl-1",
        position_id="tl-1@team-2",
        grant_id=record.grant_id,
        p30_id=uuid.uuid4(),
        successor_position_id=None,
        state="failed" if failed else "requested",
        requested_at=NOW,
    )
    return FakeAccess(users, p30s=[set_up], grants=[record], releases=[release]), release


def remove(kind: AccessKind) -> RequestAccessRemoval:
    return RequestAccessRemoval(
        user_id="tl-1",
        position_id="tl-1@team-2",
        kind=kind,
        reason="back from leave",
        discussion_held=True,
        discussed_with="tl-2",
    )


async def test_ac08_ac20_the_removal_p30_is_submitted_for_the_access_team() -> None:
    repos, _ = holding(AccessKind.ABSENCE)
    ctx = await handle(
        removal.request_access_removal, remove(AccessKind.ABSENCE), repos, actor="sm"
    )
    (recorded,) = ctx.events
    assert isinstance(recorded, P30Recorded)
    assert (recorded.action, recorded.state) == ("removal", "submitted")
    assert repos.change.positions == []  # the position stays until the access team actions it


async def test_ac15_hierarchical_access_is_removed_by_the_line_manager_of_who_set_it_up() -> None:
    repos, _ = holding(AccessKind.HIERARCHICAL)
    with pytest.raises(RuleViolation, match=r"^AC15:"):
        await handle(
            removal.request_access_removal, remove(AccessKind.HIERARCHICAL), repos, actor="sm"
        )
    ctx = await handle(
        removal.request_access_removal, remove(AccessKind.HIERARCHICAL), repos, actor="director"
    )
    assert [type(e) for e in ctx.events] == [P30Recorded]


async def test_ac16_a_failed_release_is_asked_for_again_under_its_p30() -> None:
    repos, failed = holding(AccessKind.ABSENCE, failed=True)
    ctx = await handle(
        removal.request_access_removal, remove(AccessKind.ABSENCE), repos, actor="sm"
    )
    (again,) = ctx.events
    assert isinstance(again, PositionReleaseRequested)
    (retry,) = repos.change.releases
    assert retry.p30_id == failed.p30_id and retry.grant_id == failed.grant_id
    assert repos.change.p30s == [(failed.p30_id, {"failure_reason": None})]


async def test_ac16_the_access_goes_once_allocation_released_the_work() -> None:
    repos, release = holding(AccessKind.ABSENCE)
    released = PositionWorkReleasedV2(
        release_id=release.release_id,
        user_id="tl-1",
        position_id="tl-1@team-2",
        items=[],
        from_owners=[],
    )
    ctx = await handle(removal.position_work_released, released, repos)
    (revoked,) = ctx.events
    assert isinstance(revoked, PositionRevoked) and revoked.p30_id == release.p30_id
    change = repos.change
    assert change.positions == [("tl-1@team-2", {"state": "removed", "removed_at": NOW})]
    assert change.current == [CurrentPosition("tl-1", None, only_if="tl-1@team-2")]
    # Answered once: a redelivered or foreign answer changes nothing.
    done = replace(release, state="released")
    repos.holdings.releases[release.release_id] = done
    again = await handle(removal.position_work_released, released, repos)
    assert again.events == [] and len(repos.changes) == 1


async def test_ac16_a_failed_release_keeps_the_access_with_the_reason() -> None:
    repos, release = holding(AccessKind.ABSENCE)
    failed = PositionWorkReleaseFailed(
        release_id=release.release_id,
        user_id="tl-1",
        position_id="tl-1@team-2",
        reason="AC16: no successor",
    )
    ctx = await handle(removal.position_work_release_failed, failed, repos)
    (told,) = ctx.events
    assert isinstance(told, PositionRemovalFailed) and told.reason == "AC16: no successor"
    assert repos.change.positions == [("tl-1@team-2", {"release_failed": True})]
    assert repos.change.grant_updates == []  # the record stays


def _released_part(release: Release, part: int, parts: int, count: int) -> PositionWorkReleasedV2:
    items = [
        WorkItemSnapshot(
            work_item_id=uuid.uuid5(release.release_id, f"{part}-{n}"),
            person_id=f"P-{part}-{n}",
            step_type=StepType.SERVICE_REQUEST,
            state=WorkState.INCOMING,
            owner_kind="hopper",
            owner_id="hopper-team-2",
            priority="normal",
        )
        for n in range(count)
    ]
    return PositionWorkReleasedV2(
        release_id=release.release_id,
        user_id="tl-1",
        position_id="tl-1@team-2",
        items=items,
        from_owners=[Owner(kind="worker", id="tl-1@team-2")] * count,
        part=part,
        parts=parts,
    )


async def test_tr08_ac16_a_release_in_parts_removes_the_access_once_with_every_part() -> None:
    repos, release = holding(AccessKind.ABSENCE)
    first = _released_part(release, 1, 2, BULK_EVENT_ITEMS)
    last = _released_part(release, 2, 2, 1)
    ctx = await handle(removal.position_work_released, first, repos)
    assert ctx.events == []  # not yet: the release is answered only with its last part
    (noted,) = repos.changes
    assert noted.positions == [] and noted.grant_updates == [] and noted.p30s == []
    assert repos.holdings.releases[release.release_id].state == "requested"
    again = await handle(removal.position_work_released, first, repos)  # read twice
    assert again.events == []
    assert len(repos.holdings.releases[release.release_id].moved) == BULK_EVENT_ITEMS

    ctx = await handle(removal.position_work_released, last, repos)
    (revoked,) = ctx.events
    assert isinstance(revoked, PositionRevoked) and revoked.p30_id == release.p30_id
    done = repos.changes[-1]
    assert done.positions == [("tl-1@team-2", {"state": "removed", "removed_at": NOW})]
    ((_, values),) = done.release_updates
    assert values["state"] == "released"
    every = [str(i.work_item_id) for i in (*first.items, *last.items)]
    moved = values["moved"]
    assert isinstance(moved, list)
    assert [m["work_item_id"] for m in moved] == every  # counted over all parts
    # Answered once: the last part read again changes nothing.
    saved = len(repos.changes)
    assert (await handle(removal.position_work_released, last, repos)).events == []
    assert len(repos.changes) == saved
