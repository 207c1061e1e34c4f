"""DL01, DL03: deadlines are counted in working days of England and Wales."""

from datetime import UTC, date, datetime

from services.shared.working_days import (
    add_working_days,
    due_at,
    is_working_day,
    working_days_between,
)


def test_dl01_weekends_and_bank_holidays_do_not_count() -> None:
    # Christmas 2026: Friday 25th, and Boxing Day (Saturday) is substituted on Monday 28th.
    assert not is_working_day(date(2026, 12, 25))
    assert not is_working_day(date(2026, 12, 26))
    assert not is_working_day(date(2026, 12, 28))
    assert add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 29)
    # An ordinary week: Monday plus five working days is the next Monday.
    assert add_working_days(date(2026, 11, 2), 5) == date(2026, 11, 9)


def test_dl01_a_start_on_a_non_working_day_counts_from_the_next_working_day() -> None:
    assert add_working_days(date(2026, 11, 7), 0) == date(2026, 11, 9)  # Saturday → Monday
    assert add_working_days(date(2026, 11, 7), 1) == date(2026, 11, 10)


def test_dl01_working_days_between_is_the_inverse_of_adding_them() -> None:
    start = date(2026, 12, 18)
    for days in range(0, 30):
        end = add_working_days(start, days)
        assert working_days_between(start, end) == days


def test_dl03_a_deadline_falls_due_at_the_close_of_its_working_day() -> None:
    start = datetime(2026, 12, 24, 15, 30, tzinfo=UTC)
    assert due_at(start, 1) == datetime(2026, 12, 29, 23, 59, 59, tzinfo=UTC)
