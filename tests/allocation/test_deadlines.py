"""DL01, DL02 over the real broker and database: work items are due by their step type in
working days, the deadline sweep flags due and overdue work once (run twice, on two instances),
and overdue work is flagged in the workviews and the person's record.

Time is driven explicitly. Commands are applied at a chosen moment (`applied_at`: the running
service's injected clock), and the sweep is run as of a chosen moment, as the access scheduler's
tests do. The work of these tests is made due on the next working day (`due_day()`): after today,
so the service's own periodic sweep (the real clock) does not touch it, and before any work the
other tests make today (due two working days on at the soonest), so these sweeps touch none of
theirs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from contracts import Topics
from contracts.allocation import (
    AssignWork,
    ReceiveReferral,
    StepType,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemDue,
    WorkItemOverdue,
)
from contracts.signoff import StepFinished
from services.allocation import deadline_sweep, deadlines
from services.allocation.service import SPEC
from services.shared import working_days
from services.shared.runtime import ServiceRuntime
from services.shared.settings import Settings
from tests.allocation.helpers import (
    HUB_1,
    SO_HUB,
    get,
    new_person,
    next_action_work,
    ok,
    only,
    reaction,
    refused,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

HUB_TEAM = "Wellbeing Service Hub Team"


@contextlib.contextmanager
def applied_at(service: RunningService, moment: datetime) -> Iterator[None]:
    """Commands consumed inside this block are applied at `moment` (the service's clock)."""
    processor: Any = service.runtime.processor
    real = processor._clock
    processor._clock = lambda: moment
    try:
        yield
    finally:
        processor._clock = real


def due_day() -> date:
    """The next working day: later than today (the periodic sweep), sooner than the due date of
    any work made today (DL01: two working days at the least)."""
    assert min(deadlines.DUE_WORKING_DAYS.values()) >= 2
    return working_days.add_working_days(datetime.now(UTC).date(), 1)


def created_for(step_type: StepType, due: date) -> datetime:
    """A moment at which work of this step type would be made to fall due on `due`."""
    day = due
    while True:
        day -= timedelta(days=1)
        moment = datetime.combine(day, time(10), tzinfo=UTC)
        if deadlines.due_at_for(step_type, moment).date() == due:
            return moment


def on(due: date, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime.combine(due, time(hour, minute, second, micro), tzinfo=UTC)


async def sweep_at(runtime: ServiceRuntime, now: datetime) -> int:
    async with runtime.transaction(now=now) as work:
        return await deadline_sweep.sweep_batch(work)


@contextlib.asynccontextmanager
async def second_instance(settings: Settings) -> Any:
    """Another allocation instance on the same database (its sweep's transactions are its
    own); the running service's relay publishes what it writes to the outbox."""
    runtime = ServiceRuntime(SPEC, settings)
    try:
        yield runtime
    finally:
        await runtime.engine.dispose()


def flagged(event_log: EventLog, model: type[Any], work_item_id: uuid.UUID) -> list[Any]:
    return [
        model.model_validate(e.payload)
        for e in event_log.envelopes()
        if e.type == model.TYPE
        and (e.payload.get("item") or e.payload["items"][0])["work_item_id"] == str(work_item_id)
    ]


async def fence(commands: CommandClient, event_log: EventLog, item: WorkItemCreated) -> None:
    """A later event about the same person (same key, same partition): once it is read, every
    event the sweeps wrote before it has been read too."""
    referral = ReceiveReferral(person_id=item.person_id, person_name="Grace Hopper", area="North")
    await ok(commands, event_log, referral, SO_HUB)


async def triage_for_hub_1(
    allocation: RunningService, commands: CommandClient, event_log: EventLog, due: date
) -> WorkItemCreated:
    """A referral made so that its triage falls due on `due`, assigned to hub-1."""
    with applied_at(allocation, created_for(StepType.TRIAGE, due)):
        created = only(
            await ok(
                commands,
                event_log,
                ReceiveReferral(person_id=new_person(), person_name="Grace Hopper", area="North"),
                SO_HUB,
            ),
            WorkItemCreated,
        )
        await ok(
            commands,
            event_log,
            AssignWork(
                person_id=created.person_id,
                work_item_id=created.work_item_id,
                to_position_id=HUB_1.position_id,
            ),
            SO_HUB,
        )
    assert created.due_at is not None and created.due_at.date() == due
    return created


async def test_dl01_work_items_are_due_by_step_type_skipping_the_christmas_bank_holidays(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    # Thursday 23 December 2027; Christmas and Boxing Day fall on the weekend and are bank
    # holidays on Monday 27th and Tuesday 28th.
    before_christmas = datetime(2027, 12, 23, 9, 15, tzinfo=UTC)
    with applied_at(directory, before_christmas):
        referral = only(
            await ok(
                commands,
                event_log,
                ReceiveReferral(person_id=new_person(), person_name="Ada Lovelace", area="North"),
                SO_HUB,
            ),
            WorkItemCreated,
        )
        monitoring = await next_action_work(
            commands, event_log, referral.person_id, "worker", str(HUB_1.position_id)
        )
        assigned = only(
            await ok(
                commands,
                event_log,
                AssignWork(
                    person_id=referral.person_id,
                    work_item_id=referral.work_item_id,
                    to_position_id=HUB_1.position_id,
                ),
                SO_HUB,
            ),
            WorkItemAssigned,
        )
    # Triage, two working days: Friday 24th, then Wednesday 29th.
    assert referral.due_at == datetime(2027, 12, 29, 23, 59, 59, tzinfo=UTC)
    # A next action's step is due by its own type (Case Monitoring, twenty working days;
    # New Year's Day 2028, a Saturday, is a bank holiday on Monday 3 January).
    assert monitoring.step_type is StepType.CASE_MONITORING
    assert monitoring.due_at == deadlines.due_at_for(StepType.CASE_MONITORING, before_christmas)
    assert monitoring.due_at is not None and monitoring.due_at.date() == date(2028, 1, 25)
    # The due date travels with the item: in every snapshot and in the reads.
    assert assigned.item.due_at == referral.due_at
    read = await get(directory, SO_HUB, f"/work-items/{referral.work_item_id}")
    assert datetime.fromisoformat(read["due_at"]) == referral.due_at
    mine = await get(directory, HUB_1, "/me/work")
    row = next(i for i in mine["incoming_work"] if i["work_item_id"] == str(referral.work_item_id))
    assert datetime.fromisoformat(row["due_at"]) == referral.due_at
    assert row["overdue"] is False


async def test_dl02_sweep_flags_due_then_overdue_once_run_twice_and_on_two_instances(
    directory: RunningService,
    commands: CommandClient,
    event_log: EventLog,
    settings_for: Callable[..., Settings],
) -> None:
    due = due_day()
    item = await triage_for_hub_1(directory, commands, event_log, due)
    main = directory.runtime
    async with second_instance(settings_for("allocation")) as other:
        # The day before: nothing to flag.
        await sweep_at(main, on(due, 0) - timedelta(hours=1))
        # The due day has begun: both instances sweep at once, then one sweeps again.
        morning = on(due, 8)
        await asyncio.gather(sweep_at(main, morning), sweep_at(other, morning))
        await sweep_at(other, morning + timedelta(hours=1))
        (told_due,) = await event_log.wait_for(
            lambda: flagged(event_log, WorkItemDue, item.work_item_id)
        )
        assert told_due.due_at == item.due_at
        assert told_due.item.owner_id == HUB_1.position_id
        assert told_due.item.owner_user_id == HUB_1.user_id
        assert told_due.item.owner_unit_id == HUB_TEAM
        assert not flagged(event_log, WorkItemOverdue, item.work_item_id)
        # Past its due moment: overdue, once, whichever instance and however often.
        late = on(due, 23, 59, 59, 500_000)
        await asyncio.gather(sweep_at(main, late), sweep_at(other, late))
        await sweep_at(main, late + timedelta(days=3))  # and after a restart: the flag is stored
    await fence(commands, event_log, item)
    assert len(flagged(event_log, WorkItemDue, item.work_item_id)) == 1
    (overdue,) = flagged(event_log, WorkItemOverdue, item.work_item_id)
    assert overdue.due_at == item.due_at
    history = await get(directory, SO_HUB, f"/persons/{item.person_id}/history")
    changes = [h["change"] for h in history["work_history"]]
    assert changes.count("due") == 1 and changes.count("overdue") == 1


async def test_dl02_overdue_work_is_flagged_in_the_workviews_and_the_persons_record(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    due = due_day()
    late = await triage_for_hub_1(directory, commands, event_log, due)
    # Work made today is not due yet: it is never flagged by the same sweep.
    on_time = only(
        await ok(
            commands,
            event_log,
            ReceiveReferral(person_id=late.person_id, person_name="Grace Hopper", area="North"),
            SO_HUB,
        ),
        WorkItemCreated,
    )
    await sweep_at(directory.runtime, on(due, 23, 59, 59, 500_000))
    await event_log.wait_for(lambda: flagged(event_log, WorkItemOverdue, late.work_item_id))
    assert not flagged(event_log, WorkItemOverdue, on_time.work_item_id)

    def overdue_of(rows: list[dict[str, Any]]) -> dict[str, bool]:
        ids = {str(late.work_item_id), str(on_time.work_item_id)}
        return {r["work_item_id"]: r["overdue"] for r in rows if r["work_item_id"] in ids}

    mine = await get(directory, HUB_1, "/me/work")
    assert overdue_of(mine["incoming_work"]) == {str(late.work_item_id): True}
    worker = await get(directory, SO_HUB, f"/workers/{HUB_1.position_id}/work")
    assert overdue_of(worker["incoming_work"]) == {str(late.work_item_id): True}
    team = await get(directory, SO_HUB, f"/teams/{HUB_TEAM}/work")
    assert overdue_of(team["incoming_work"]) == {str(on_time.work_item_id): False}
    record = await get(directory, SO_HUB, f"/persons/{late.person_id}")
    assert overdue_of(record["current_work"]) == {
        str(late.work_item_id): True,
        str(on_time.work_item_id): False,
    }
    found = await get(directory, SO_HUB, "/work-items", person_name="Grace Hopper")
    assert overdue_of(found["work_items"])[str(late.work_item_id)] is True
    one = await get(directory, HUB_1, f"/work-items/{late.work_item_id}")
    assert one["overdue"] is True
    summary = await get(directory, SO_HUB, f"/teams/{HUB_TEAM}")
    (hub_1,) = [w for w in summary["workers"] if w["position_id"] == HUB_1.position_id]
    assert hub_1["overdue"] >= 1


async def test_dl02_finished_work_is_not_flagged(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    due = due_day()
    item = await triage_for_hub_1(directory, commands, event_log, due)
    finished = StepFinished(
        step_id=item.work_item_id,
        person_id=item.person_id,
        step_type=StepType.TRIAGE,
        next_actions=[],
    )
    await reaction(commands, event_log, finished, Topics.SIGNOFF_EVENTS)
    await sweep_at(directory.runtime, on(due, 23, 59, 59, 500_000))
    await sweep_at(directory.runtime, on(due, 8))
    await fence(commands, event_log, item)
    assert not flagged(event_log, WorkItemDue, item.work_item_id)
    assert not flagged(event_log, WorkItemOverdue, item.work_item_id)


async def test_dl01_dl02_a_referral_received_a_week_before_it_is_logged_is_overdue_at_once(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    """The service's own sweep (every few seconds, the real clock) flags it; nobody drives it."""
    person = new_person()
    received = datetime.now(UTC) - timedelta(days=7)
    referral = ReceiveReferral(
        person_id=person, person_name="Owen Late", area="South", received_at=received
    )
    created = only(await ok(commands, event_log, referral, SO_HUB), WorkItemCreated)
    assert created.due_at == deadlines.due_at_for(StepType.TRIAGE, received)
    assert created.due_at is not None and created.due_at < datetime.now(UTC)

    def overdue() -> list[Any]:
        return [
            e
            for e in event_log.envelopes()
            if e.type == WorkItemOverdue.TYPE
            and e.payload["item"]["work_item_id"] == str(created.work_item_id)
        ]

    await event_log.wait_for(overdue, timeout=60)
    work = await get(directory, SO_HUB, f"/teams/{HUB_TEAM}/work")
    (row,) = [i for i in work["incoming_work"] if i["work_item_id"] == str(created.work_item_id)]
    assert row["overdue"] is True


async def test_dl01_work_cannot_be_received_after_it_is_logged(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    referral = ReceiveReferral(
        person_id=new_person(), person_name="Fay Future", area="North", received_at=later
    )
    rejection = await refused(commands, event_log, referral, SO_HUB)
    assert rejection.rule == "DL01" and "after it is logged" in rejection.reason
