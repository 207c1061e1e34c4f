"""Pure tests of the notifications domain: no broker, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.notifications import domain
from services.notifications.domain import Kind, Recipient, RetryPolicy, Webhook
from services.shared.rules import RuleViolation

SOURCE = uuid.UUID("00000000-0000-0000-0000-000000000001")
T0 = datetime(2026, 8, 31, 9, 0, tzinfo=UTC)


def _notice(kind: str = Kind.REQUEST_RETURNED) -> domain.Notice:
    return domain.Notice(kind, "NT03", "subject", "body", {"x": 1})


def test_nt07_inbox_always_email_only_when_wanted_and_known() -> None:
    recipients = [
        Recipient("a", "a@example.org"),
        Recipient("b", None),
        Recipient("c", "c@example.org", frozenset({"inbox"})),
    ]
    planned = domain.plan_deliveries(SOURCE, _notice(), recipients)
    assert {(d.recipient_id, d.channel) for d in planned} == {
        ("a", "inbox"),
        ("a", "email"),
        ("b", "inbox"),
        ("c", "inbox"),
    }
    (email,) = [d for d in planned if d.channel == "email"]
    assert email.target == "a@example.org" and email.rule == "NT03"


def test_nt07_one_delivery_per_recipient_and_channel_with_stable_ids() -> None:
    twice = [Recipient("a", "a@example.org"), Recipient("a", "a@example.org")]
    first = domain.plan_deliveries(SOURCE, _notice(), twice)
    again = domain.plan_deliveries(SOURCE, _notice(), twice[:1])
    assert len(first) == 2
    assert [d.delivery_id for d in first] == [d.delivery_id for d in again]
    other_source = domain.plan_deliveries(uuid.uuid4(), _notice(), twice[:1])
    assert {d.delivery_id for d in other_source}.isdisjoint({d.delivery_id for d in first})
    assert domain.delivery_id(SOURCE, "a", "inbox", "k1") != domain.delivery_id(
        SOURCE, "a", "inbox", "k2"
    )


def test_nt07_webhooks_by_kind_one_delivery_naming_every_recipient() -> None:
    hooks = [
        Webhook("h-kind", "http://x/1", frozenset({Kind.REQUEST_RETURNED})),
        Webhook("h-all", "http://x/2", frozenset({"*"})),
        Webhook("h-other", "http://x/3", frozenset({Kind.WORK_LANDED})),
    ]
    planned = domain.plan_deliveries(SOURCE, _notice(), [Recipient("b"), Recipient("a")], hooks)
    posts = [d for d in planned if d.channel == "webhook"]
    assert {d.recipient_id for d in posts} == {"h-kind", "h-all"}
    assert all(d.data["recipients"] == ["a", "b"] for d in posts)
    assert domain.plan_deliveries(SOURCE, _notice(), [], hooks) == []  # nobody to tell


def test_nt07_a_position_nobody_is_known_to_hold_gets_one_waiting_inbox_delivery() -> None:
    waiting = [domain.waiting_for("pos-1"), domain.waiting_for("pos-1")]
    planned = domain.plan_deliveries(SOURCE, _notice(), [], [], waiting)
    assert [(d.recipient_id, d.channel, d.waiting) for d in planned] == [
        ("position:pos-1", "inbox", True)
    ]


def test_nt07_inbox_cannot_be_switched_off_and_only_own_preferences() -> None:
    assert domain.check_preferences("u", "u", ["email", "inbox"]) == ["inbox", "email"]
    with pytest.raises(RuleViolation) as refused:
        domain.check_preferences("u", "u", ["email"])
    assert refused.value.rule == "NT07"
    with pytest.raises(RuleViolation) as refused:
        domain.check_preferences("u", "u", ["inbox", "webhook"])
    assert refused.value.rule == "NT07"
    with pytest.raises(RuleViolation) as refused:
        domain.check_preferences("someone-else", "u", ["inbox"])
    assert refused.value.rule == "actor-token"


def test_nt07_backoff_doubles_up_to_a_cap_and_parks_after_the_limit() -> None:
    policy = RetryPolicy(max_attempts=4, base_seconds=2, max_seconds=5)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 5, 5]
    assert policy.after_failure(1, T0) == T0 + timedelta(seconds=2)
    assert policy.after_failure(3, T0) == T0 + timedelta(seconds=5)
    assert policy.after_failure(4, T0) is None  # parked, never dropped


def test_nt01_work_landed_notices_carry_the_note_and_every_bulk_item() -> None:
    item = uuid.uuid4()
    notice = domain.work_landed(
        work_item_id=item, person_id="P1", what="WB Case Monitoring", how="assignment", note="hi"
    )
    assert notice.rule == "NT01" and "hi" in notice.body and "P1" in notice.body
    items = [(uuid.uuid4(), f"P{i}", "WB Case Monitoring") for i in range(3)]
    bulk = domain.bulk_landed(items=items, how="bulk assignment", note="all")
    assert bulk.rule == "NT01" and all(str(i) in bulk.body for i, _, _ in items)


def test_nt02_nt03_nt06_notices_cite_their_rules() -> None:
    arrived = domain.request_arrived(
        request_id=uuid.uuid4(), person_id="P1", title="T", team="Management"
    )
    returned = domain.request_returned(
        request_id=uuid.uuid4(), step_id=uuid.uuid4(), person_id="P1", note="why"
    )
    removed = domain.access_changed(
        granted=False, user_id="u", position_id="p", unit="Appeals", kind="hierarchical"
    )
    assert (arrived.rule, returned.rule, removed.rule) == ("NT02", "NT03", "NT06")
    assert "why" in returned.body and removed.kind == Kind.ACCESS_REMOVED
    assert not domain.is_secondary("primary") and domain.is_secondary("absence-related")


def test_nt04_p30_reminded_daily_then_escalated_at_the_deadline() -> None:
    deadline = T0 + timedelta(days=3)
    first = domain.p30_first_reminder(T0, deadline)
    assert (first.kind, first.due_at, first.escalate) == (
        Kind.P30_REMINDER,
        T0 + timedelta(days=1),
        False,
    )
    second = domain.p30_next_reminder(first.due_at, deadline)
    assert second.due_at == T0 + timedelta(days=2) and not second.escalate
    last = domain.p30_next_reminder(second.due_at, deadline)
    assert (last.kind, last.due_at, last.escalate) == (Kind.P30_OVERDUE, deadline, True)


def test_nt05_review_six_months_on_announced_before_due_and_escalated_after() -> None:
    assert domain.review_due(T0) == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)  # clamped month end
    assert domain.add_months(datetime(2027, 12, 15, tzinfo=UTC), 6) == datetime(
        2028, 6, 15, tzinfo=UTC
    )
    due = domain.review_due(T0)
    reminders = domain.review_reminders(due)
    assert [(r.kind, r.due_at, r.escalate) for r in reminders] == [
        (Kind.REVIEW_UPCOMING, domain.review_notice_at(due), False),
        (Kind.REVIEW_DUE, due, False),
        (Kind.REVIEW_OVERDUE, due + domain.REVIEW_GRACE, True),
    ]
    notice = domain.reminder_notice(
        Kind.REVIEW_OVERDUE, user_id="u", position_id="p", unit="Team", deadline=due
    )
    assert notice.rule == "NT05" and due.isoformat() in notice.body


def test_ac21_ac20_the_requester_is_told_the_time_scale_or_the_refusal() -> None:
    grant_at = datetime(2027, 1, 6, 14, 0, tzinfo=UTC)
    scheduled = domain.emergency_scheduled(
        user_id="tl-2", unit="Team 1", grant_at=grant_at, answered_by="flls-1"
    )
    assert (scheduled.kind, scheduled.rule) == (Kind.EMERGENCY_SCHEDULED, "AC21")
    assert grant_at.isoformat() in scheduled.body and "P30" in scheduled.body
    p30_id = uuid.uuid4()
    refused = domain.p30_refused(
        user_id="tl-2", p30_id=p30_id, refused_by="flls-1", reason="form incomplete"
    )
    assert (refused.kind, refused.rule) == (Kind.P30_REFUSED, "AC20")
    assert "form incomplete" in refused.body and refused.data["p30_id"] == str(p30_id)


def test_dl03_review_announced_ten_working_days_before_it_falls_due() -> None:
    due = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)  # Christmas and New Year do not count
    assert domain.review_notice_at(due) == datetime(2026, 12, 17, 0, 0, tzinfo=UTC)
