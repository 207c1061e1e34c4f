"""Handler unit tests, without the broker or the database: the current position (AC17)."""

from __future__ import annotations

import pytest

from contracts.access import AccessKind, ChangePosition, CurrentPositionChanged
from services.access.handlers import current_position
from services.access.records import CurrentPosition
from services.shared.rules import RuleViolation
from tests.access.fakes import FakeAccess, agency, handle, with_secondary


async def test_ac17_a_user_switches_to_a_position_they_hold() -> None:
    users = agency()
    users["tl-1"] = with_secondary(users["tl-1"], "team-2", AccessKind.ABSENCE)
    repos = FakeAccess(users)
    cmd = ChangePosition(user_id="tl-1", position_id="tl-1@team-2")
    ctx = await handle(current_position.change_position, cmd, repos, actor="tl-1")
    (changed,) = ctx.events
    assert isinstance(changed, CurrentPositionChanged)
    assert changed.previous_position_id == "pos-tl-1"  # the primary, before any choice
    assert repos.change.current == [CurrentPosition("tl-1", "tl-1@team-2")]


@pytest.mark.parametrize(
    ("actor", "position_id", "pending"),
    [
        ("sm", "tl-1@team-2", False),  # only the user
        ("tl-1", "pos-tl-2", False),  # a position they do not hold
        ("tl-1", "tl-1@team-2", True),  # one being removed (AC16)
    ],
)
async def test_ac17_only_the_user_and_only_a_position_they_hold(
    actor: str, position_id: str, pending: bool
) -> None:
    users = agency()
    users["tl-1"] = with_secondary(users["tl-1"], "team-2", AccessKind.ABSENCE, pending=pending)
    repos = FakeAccess(users)
    cmd = ChangePosition(user_id="tl-1", position_id=position_id)
    with pytest.raises(RuleViolation, match=r"^AC17:"):
        await handle(current_position.change_position, cmd, repos, actor=actor)
    assert repos.changes == []
