"""Handler unit tests, without the broker or the database: the directory load (TR03)."""

from __future__ import annotations

import pytest

from contracts.access import (
    DirectoryLoaded,
    LoadDirectory,
    PositionGranted,
    PrimaryPositionSpec,
    Role,
    UnitDefined,
    UnitKind,
    UnitSpec,
    UserRegistered,
    UserSpec,
)
from services.access.handlers import directory_load
from services.shared.identity import AppRole
from services.shared.rules import RuleViolation
from tests.access.fakes import FakeAccess, handle

LOAD = LoadDirectory(
    units=[UnitSpec(unit_id="team-9", name="Team 9", kind=UnitKind.TEAM, parent_id="enforcement")],
    users=[UserSpec(user_id="new", name="New Starter")],
    positions=[
        PrimaryPositionSpec(
            position_id="pos-new", user_id="new", unit_id="team-9", role=Role.CASEWORKER
        )
    ],
)


async def test_tr03_a_directory_administrator_loads_and_every_change_is_audited() -> None:
    repos = FakeAccess()
    roles = frozenset({AppRole.DIRECTORY_ADMIN.value})
    ctx = await handle(directory_load.load_directory, LOAD, repos, actor="hr", roles=roles)
    assert [type(e) for e in ctx.events] == [
        UnitDefined,
        UserRegistered,
        PositionGranted,
        DirectoryLoaded,
    ]
    ((load, plan),) = repos.directory.saved
    assert load == LOAD and plan.authority == (AppRole.DIRECTORY_ADMIN.value,)
    assert {(c.entity, c.entity_id, c.action) for c in plan.changes} == {
        ("unit", "team-9", "created"),
        ("user", "new", "created"),
        ("position", "pos-new", "created"),
    }


async def test_tr03_without_a_directory_role_nothing_is_loaded() -> None:
    repos = FakeAccess()
    with pytest.raises(RuleViolation, match=r"^TR03:"):
        await handle(directory_load.load_directory, LOAD, repos, actor="sm")
    assert repos.directory.saved == []
