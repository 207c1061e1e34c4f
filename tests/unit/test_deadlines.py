"""DL01, DL02 as pure decisions: due dates by step type in working days, and when an item's
deadline is flagged due or overdue. Who is told (DL02) as the notifications domain decides."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.allocation import StepType, WorkState
from services.allocation import deadlines
from services.allocation.deadlines import (
    DUE_WORKING_DAYS,
    DeadlineFlag,
    due_at_for,
    is_overdue,
    next_flag,
    sweep_horizon,
)
from services.notifications import domain as notifications
from services.shared.rules import RuleViolation

# Tuesday 23 December 2025, mid-morning: Christmas Day and Boxing Day (Thursday, Friday) and
# the weekend follow.
BEFORE_CHRISTMAS_2025 = datetime(2025, 12, 23, 10, 30, tzinfo=UTC)


def test_dl01_every_step_type_has_a_due_date_in_working_days() -> None:
    assert set(DUE_WORKING_DAYS) == set(StepType)
    for step_type in StepType:
        due = due_at_for(step_type, BEFORE_CHRISTMAS_2025)
        assert due > BEFORE_CHRISTMAS_2025
        assert due.weekday() < 5  # due on a working day, at its close
        assert (due.hour, due.minute, due.second) == (23, 59, 59)


def test_dl01_due_dates_skip_the_christmas_bank_holidays() -> None:
    # Triage, two working days: Wednesday 24th, then (25th, 26th bank holidays; weekend)
    # Monday 29th.
    assert due_at_for(StepType.TRIAGE, BEFORE_CHRISTMAS_2025) == datetime(
        2025, 12, 29, 23, 59, 59, tzinfo=UTC
    )
    # A service request, five: 24th, 29th, 30th, 31st, (New Year's Day) Friday 2 January.
    assert due_at_for(StepType.SERVICE_REQUEST, BEFORE_CHRISTMAS_2025) == datetime(
        2026, 1, 2, 23, 59, 59, tzinfo=UTC
    )
    # Christmas 2027 falls on a weekend: both bank holidays move to Monday 27th and Tuesday 28th.
    assert due_at_for(StepType.TRIAGE, datetime(2027, 12, 23, 9, tzinfo=UTC)) == datetime(
        2027, 12, 29, 23, 59, 59, tzinfo=UTC
    )


def test_dl01_a_policy_override_changes_the_count_not_the_calendar() -> None:
    policy = {**DUE_WORKING_DAYS, StepType.TRIAGE: 1}
    assert due_at_for(StepType.TRIAGE, BEFORE_CHRISTMAS_2025, policy).date().day == 24
    policy[StepType.TRIAGE] = 2
    assert due_at_for(StepType.TRIAGE, BEFORE_CHRISTMAS_2025, policy).date().day == 29


def test_dl02_flagged_due_when_the_due_day_begins_then_overdue_once_it_has_passed() -> None:
    due = datetime(2025, 12, 29, 23, 59, 59, tzinfo=UTC)
    day_before = datetime(2025, 12, 28, 23, 0, tzinfo=UTC)
    morning = datetime(2025, 12, 29, 0, 0, tzinfo=UTC)
    after = due + timedelta(seconds=1)
    open_ = WorkState.INCOMPLETE
    assert next_flag(due, day_before, DeadlineFlag.NONE, open_) is None
    assert next_flag(due, morning, DeadlineFlag.NONE, open_) is DeadlineFlag.DUE
    assert next_flag(due, due, DeadlineFlag.DUE, open_) is None  # once
    assert next_flag(due, after, DeadlineFlag.DUE, open_) is DeadlineFlag.OVERDUE
    assert next_flag(due, after, DeadlineFlag.OVERDUE, open_) is None  # once
    # The sweep's query bound agrees: due before the start of the day after `now`.
    assert due < sweep_horizon(morning)
    assert not due < sweep_horizon(day_before)


def test_dl02_a_due_day_missed_by_the_sweep_is_flagged_overdue_only() -> None:
    due = datetime(2025, 12, 29, 23, 59, 59, tzinfo=UTC)
    later = datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert next_flag(due, later, DeadlineFlag.NONE, WorkState.INCOMING) is DeadlineFlag.OVERDUE


def test_dl02_finished_work_and_work_without_a_due_date_are_never_flagged() -> None:
    due = datetime(2025, 12, 29, 23, 59, 59, tzinfo=UTC)
    later = datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert next_flag(due, later, DeadlineFlag.NONE, WorkState.FINISHED) is None
    assert next_flag(None, later, DeadlineFlag.NONE, WorkState.INCOMING) is None
    assert is_overdue(DeadlineFlag.OVERDUE, WorkState.INCOMPLETE)
    assert not is_overdue(DeadlineFlag.OVERDUE, WorkState.FINISHED)
    assert not is_overdue(DeadlineFlag.DUE, WorkState.INCOMPLETE)


def test_dl02_assignee_and_leaders_are_told_once_each_per_item_and_flag() -> None:
    assert notifications.deadline_recipients(["cw"], ["tl", "cw", "so"]) == ["cw", "tl", "so"]
    assert notifications.deadline_recipients([], ["so"]) == ["so"]
    item = uuid.uuid4()
    due = notifications.deadline_source(item, notifications.Kind.WORK_DUE)
    assert due == notifications.deadline_source(item, notifications.Kind.WORK_DUE)
    assert due != notifications.deadline_source(item, notifications.Kind.WORK_OVERDUE)
    when = datetime(2025, 12, 29, 23, 59, 59, tzinfo=UTC)
    notice = notifications.deadline_notice(
        overdue=True, work_item_id=item, person_id="P-1", what="Service request", due_at=when
    )
    assert (notice.kind, notice.rule) == (notifications.Kind.WORK_OVERDUE, "DL02")
    assert "2025-12-29" in notice.body


def test_dl01_work_received_before_it_is_logged_counts_from_its_receipt() -> None:
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    received = datetime(2026, 11, 23, 9, tzinfo=UTC)  # a Monday, a week before
    assert deadlines.counted_from(None, now) == now
    assert deadlines.counted_from(received, now) == received
    assert due_at_for(StepType.TRIAGE, deadlines.counted_from(received, now)) == (
        datetime(2026, 11, 25, 23, 59, 59, tzinfo=UTC)
    )


def test_dl01_a_receipt_in_the_future_or_too_long_ago_is_refused() -> None:
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    for received in (now + timedelta(minutes=1), now - timedelta(days=31)):
        with pytest.raises(RuleViolation) as refused:
            deadlines.counted_from(received, now)
        assert refused.value.rule == "DL01"
