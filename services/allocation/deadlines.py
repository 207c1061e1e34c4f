"""Deadlines of work items (DL01, DL02), as pure decisions: no I/O, time comes in as arguments.

DL01: every work item is due a number of working days after it is created, set by its step type
(a service request is the agency's one request type). Working days skip weekends and the bank
holidays of England and Wales (`services.shared.working_days`); an item is due at the close
(23:59:59 UTC) of its last working day.

The counts are the house's policy, chosen from what each step is for:

| step type | working days | why |
| --- | --- | --- |
| WB Initial Risk Assessment and Triage | 2 | a new referral's risk is screened at once |
| WB Trusted Assessment and Support Planning | 10 | two working weeks to assess and plan |
| WB Support Action Plan Delivery | 20 | the plan's actions over a working month |
| WB Case Monitoring | 20 | a monthly monitoring cycle |
| Service request | 5 | a customer is answered within a working week |

DL02: an unfinished item is flagged `due` once its due day has begun and `overdue` once its due
moment has passed; each flag is raised once (the sweep stores it with the event it emits)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType

from contracts.allocation import StepType, WorkState
from services.shared import working_days
from services.shared.rules import RuleViolation

DUE_WORKING_DAYS: Mapping[StepType, int] = MappingProxyType(
    {
        StepType.TRIAGE: 2,
        StepType.TRUSTED_ASSESSMENT: 10,
        StepType.SUPPORT_PLAN_DELIVERY: 20,
        StepType.CASE_MONITORING: 20,
        StepType.SERVICE_REQUEST: 5,
    }
)


class DeadlineFlag(StrEnum):
    """How far an item's deadline has been flagged (DL02): stored on the item."""

    NONE = "none"
    DUE = "due"
    OVERDUE = "overdue"


# DL01: how much earlier than it is logged work may say it was received.
RECEIVED_BEFORE_MAX_DAYS = 30


def counted_from(received_at: datetime | None, now: datetime) -> datetime:
    """DL01: the moment an item's working days count from: when the work was received, if it
    says so, else now. A receipt in the future, or more than RECEIVED_BEFORE_MAX_DAYS back,
    is refused."""
    if received_at is None:
        return now
    if received_at.tzinfo is None:
        raise RuleViolation("DL01", "received_at needs a time zone")
    if received_at > now:
        raise RuleViolation("DL01", "work cannot be received after it is logged")
    if received_at < now - timedelta(days=RECEIVED_BEFORE_MAX_DAYS):
        raise RuleViolation(
            "DL01", f"work received more than {RECEIVED_BEFORE_MAX_DAYS} days ago is logged as new"
        )
    return received_at


def due_at_for(
    step_type: StepType, created_at: datetime, policy: Mapping[StepType, int] = DUE_WORKING_DAYS
) -> datetime:
    """DL01: when an item of this step type created at `created_at` is due."""
    return working_days.due_at(created_at, policy[step_type])


def due_day_start(due_at: datetime) -> datetime:
    """DL02: the moment an item falls due: the start (UTC) of its due day."""
    return datetime.combine(due_at.astimezone(UTC).date(), time.min, tzinfo=UTC)


def sweep_horizon(now: datetime) -> datetime:
    """Items due before this moment have had their due day begin by `now`: the start of the day
    after `now`'s (UTC)."""
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time.min, tzinfo=UTC)


def next_flag(
    due_at: datetime | None, now: datetime, flagged: DeadlineFlag, state: WorkState
) -> DeadlineFlag | None:
    """DL02: the flag to raise now, or None. Finished work is never flagged. An item whose due
    day passed without a sweep is flagged overdue only: being told it is due would be late."""
    if due_at is None or state is WorkState.FINISHED or flagged is DeadlineFlag.OVERDUE:
        return None
    if now > due_at:
        return DeadlineFlag.OVERDUE
    if now >= due_day_start(due_at) and flagged is DeadlineFlag.NONE:
        return DeadlineFlag.DUE
    return None


def is_overdue(flagged: DeadlineFlag, state: WorkState) -> bool:
    """DL02: what the workviews and the person's record show: flagged overdue, not finished."""
    return flagged is DeadlineFlag.OVERDUE and state is not WorkState.FINISHED
