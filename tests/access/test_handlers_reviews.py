"""Handler unit tests, without the broker or the database: six-monthly reviews (AC09), on
fake repositories."""

from __future__ import annotations

import pytest

from contracts.access import AbsenceAccessReviewed, AccessKind, P30Recorded, ReviewAbsenceAccess
from services.access import domain
from services.access.handlers import reviews
from services.shared.rules import RuleViolation
from tests.access.fakes import NOW, FakeAccess, agency, grant, handle, p30, with_secondary


def reviewed() -> tuple[FakeAccess, ReviewAbsenceAccess]:
    users = agency()
    users["tl-1"] = with_secondary(users["tl-1"], "team-2", AccessKind.ABSENCE)
    set_up = p30("tl-1", state="complete")
    record = grant("tl-1", "tl-1@team-2", set_up.p30_id)
    repos = FakeAccess(users, p30s=[set_up], grants=[record])
    return repos, ReviewAbsenceAccess(user_id="tl-1", grant_id=record.grant_id, confirm=True)


async def test_ac09_a_confirmed_review_is_due_again_in_six_months() -> None:
    repos, cmd = reviewed()
    ctx = await handle(reviews.review_absence_access, cmd, repos, actor="sm")
    (done,) = ctx.events
    assert isinstance(done, AbsenceAccessReviewed) and done.confirmed
    assert done.next_review_due_at == domain.review_due(NOW)
    ((grant_id, values),) = repos.change.grant_updates
    assert grant_id == cmd.grant_id and values["review_due_at"] == domain.review_due(NOW)


async def test_ac09_a_review_that_removes_submits_a_removal_p30() -> None:
    repos, cmd = reviewed()
    remove = cmd.model_copy(update={"confirm": False})
    ctx = await handle(reviews.review_absence_access, remove, repos, actor="sm")
    recorded, done = ctx.events
    assert isinstance(recorded, P30Recorded) and (recorded.action, recorded.state) == (
        "removal",
        "submitted",
    )
    assert isinstance(done, AbsenceAccessReviewed) and not done.confirmed
    assert recorded.reason == "removed at review"


@pytest.mark.parametrize("actor", ["tl-2", "cw", "tl-1"])
async def test_ac09_only_the_responsible_tl_or_sm_reviews(actor: str) -> None:
    repos, cmd = reviewed()
    with pytest.raises(RuleViolation, match=r"^AC09:"):
        await handle(reviews.review_absence_access, cmd, repos, actor=actor)
    assert repos.changes == []
