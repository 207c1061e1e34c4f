"""Working days in England and Wales (DL01, DL03): weekends and bank holidays do not count.

The bank holidays come from the data the `govuk-bank-holidays` package ships (GOV.UK's
published list); nothing is fetched at run time. Pure functions of dates: domain code may use
them."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta

from govuk_bank_holidays.bank_holidays import BankHolidays

WEEKEND = (5, 6)  # Saturday, Sunday


@functools.cache
def bank_holidays() -> frozenset[date]:
    """England and Wales bank holidays from the package's own data (no network)."""
    calendar = BankHolidays(use_cached_holidays=True)
    return frozenset(
        holiday["date"]
        for holiday in calendar.get_holidays(division=BankHolidays.ENGLAND_AND_WALES)
    )


def is_working_day(day: date) -> bool:
    return day.weekday() not in WEEKEND and day not in bank_holidays()


def add_working_days(start: date, days: int) -> date:
    """The date `days` working days after `start` (DL01). Zero days: `start` itself if it is a
    working day, else the next working day."""
    if days < 0:
        raise ValueError("working days are counted forwards")
    day = start
    while not is_working_day(day):
        day += timedelta(days=1)
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def working_days_between(start: date, end: date) -> int:
    """Working days after `start` up to and including `end` (0 when `end` is not later)."""
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count


def due_at(start: datetime, days: int) -> datetime:
    """The end (23:59:59 UTC) of the working day `days` working days after `start`'s date: a
    deadline falls due at the close of its day, never mid-afternoon."""
    end_day = add_working_days(start.astimezone(UTC).date(), days)
    return datetime.combine(end_day, time(23, 59, 59), tzinfo=UTC)
