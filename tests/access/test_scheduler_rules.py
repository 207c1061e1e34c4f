"""The access scheduler's decisions without the database: it runs the same domain and
repositories as the handlers (AC09, AC11, AC21, AC22), here over the fakes."""

from __future__ import annotations

from datetime import timedelta

from contracts.access import (
    AbsenceReviewDue,
    AbsenceReviewLapsed,
    AbsenceReviewOverdue,
    AccessKind,
    EmergencyAccessGranted,
    EmergencyP30Overdue,
    P30Recorded,
    P30Refused,
    PositionReleaseRequested,
    Role,
)
from services.access import scheduler
from services.access.domain import Holdings, OverdueReviewPolicy
from services.shared.transaction import Transaction
from tests.access.fakes import NOW, FakeAccess, agency, grant, p30, person, with_secondary


def reviewed(**flags: bool) -> FakeAccess:
    users = agency()
    users["tl-1"] = with_secondary(users["tl-1"], "team-2", AccessKind.ABSENCE)
    set_up = p30("tl-1", state="complete")
    record = grant("tl-1", "tl-1@team-2", set_up.p30_id, review_due_at=NOW, **flags)
    return FakeAccess(users, p30s=[set_up], grants=[record])


async def test_ac09_a_review_falling_due_is_told_to_the_responsible_then_escalated() -> None:
    repos = reviewed()
    work = Transaction.for_test(NOW - timedelta(days=3))
    assert await scheduler.scan(work, repos=repos) == 1
    (due,) = work.events
    assert isinstance(due, AbsenceReviewDue) and due.responsible == ["sm"]

    overdue = reviewed(review_due_flagged=True)
    work = Transaction.for_test(NOW + timedelta(days=1))
    assert await scheduler.scan(work, repos=overdue) == 1
    (escalated,) = work.events
    assert isinstance(escalated, AbsenceReviewOverdue) and escalated.escalate_to == ["director"]


async def test_ac22_an_unanswered_review_is_removed_only_under_the_remove_policy() -> None:
    escalated = {"review_due_flagged": True, "review_overdue_flagged": True}
    later = Transaction.for_test(NOW + timedelta(days=30))
    assert await scheduler.scan(later, scheduler.ReviewPolicy(), reviewed(**escalated)) == 0
    remove = scheduler.ReviewPolicy(overdue_review_policy=OverdueReviewPolicy.REMOVE)
    repos = reviewed(**escalated)
    work = Transaction.for_test(NOW + timedelta(days=30))
    assert await scheduler.scan(work, remove, repos) == 1
    assert [type(e) for e in work.events] == [
        P30Recorded,
        AbsenceReviewLapsed,
        PositionReleaseRequested,
    ]
    (recorded, *_) = work.events
    assert isinstance(recorded, P30Recorded) and recorded.requested_by == scheduler.SCHEDULER


async def test_ac21_a_scheduled_grant_is_made_or_refused_when_its_time_comes() -> None:
    def scheduled(users: dict[str, Holdings] | None = None) -> FakeAccess:
        record = p30(
            "tl-1",
            state="scheduled",
            approved_by=None,
            emergency=True,
            absent_user_id="tl-2",
            scheduled_for=NOW,
            actioned_by="admin",
        )
        return FakeAccess(users, p30s=[record])

    work = Transaction.for_test(NOW)
    assert await scheduler.scan(work, repos=scheduled()) == 1
    granted = work.events[-1]
    assert isinstance(granted, EmergencyAccessGranted) and granted.actioned_by == "admin"

    users = agency()
    users["tl-3"] = person("tl-3", "team-2", Role.TEAM_LEADER)  # someone holds it now
    work = Transaction.for_test(NOW)
    await scheduler.scan(work, repos=scheduled(users))
    (refused,) = work.events
    assert isinstance(refused, P30Refused) and refused.reason.startswith("AC21:")


async def test_ac11_an_overdue_emergency_p30_is_escalated_once() -> None:
    record = p30(
        "tl-1",
        state="outstanding",
        approved_by=None,
        emergency=True,
        deadline=NOW,
    )
    work = Transaction.for_test(NOW + timedelta(hours=1))
    assert await scheduler.scan(work, repos=FakeAccess(p30s=[record])) == 1
    (overdue,) = work.events
    assert isinstance(overdue, EmergencyP30Overdue) and overdue.escalate_to == "director"
