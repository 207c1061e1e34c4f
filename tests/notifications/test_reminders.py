"""NT04 and NT05 over the real broker and database: the durable reminder schedule, fired by a
scan given an explicit `now`; it survives a restart and fires each reminder once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import Envelope, Topics
from contracts.access import (
    AbsenceAccessReviewed,
    AbsenceReviewOverdue,
    AccessGrantRecorded,
    AccessKind,
    EmergencyAccessGranted,
    EmergencyP30Overdue,
    P30Lodged,
    PositionGranted,
    Role,
)
from services.notifications.domain import Kind, review_notice_at
from services.notifications.worker import fire_due_reminders
from tests.conftest import RunningService
from tests.notifications.conftest import (
    OPERATOR,
    Notifier,
    Org,
    Person,
    inbox_of,
    publish,
    sent_events,
    uid,
    wait_until,
)
from tests.support.client import CommandClient, EventLog

SECOND = timedelta(seconds=1)


async def _schedule(service: RunningService, series: str) -> list[dict[str, Any]]:
    response = await service.get(OPERATOR, "/reminders", series=series)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["reminders"]
    return items


async def _told(event_log: EventLog, service: RunningService, series: str, kind: str) -> set[str]:
    """Who the fired reminder of `kind` in `series` told (inbox recipients)."""
    (reminder,) = [r for r in await _schedule(service, series) if r["kind"] == kind]
    assert reminder["status"] == "fired"
    source = uuid.UUID(reminder["reminder_id"])
    await event_log.wait_for(lambda: sent_events(event_log, source))
    return {s.recipient_id for s in sent_events(event_log, source) if s.channel == "inbox"}


async def _managed_org(org: Org) -> tuple[Person, Person, Person]:
    """A team leader (whose access it is), the segment manager responsible for them, and the
    team leader's line manager elsewhere."""
    await org.define()
    boss = await org.person("lm", Role.SEGMENT_MANAGER, unit_id=uid("elsewhere"), email=False)
    tl = await org.person("tl", Role.TEAM_LEADER, line_manager="lm")
    sm = await org.person("sm", Role.SEGMENT_MANAGER, unit_id=org.segment_id, email=False)
    await org.known()
    return tl, sm, boss


async def _emergency(
    commands: CommandClient, org: Org, tl: Person, sm: Person, at: datetime
) -> tuple[Envelope, EmergencyAccessGranted]:
    position_id = uid("pos-emergency")
    p30_id = uuid.uuid4()
    await publish(
        commands,
        Topics.ACCESS_EVENTS,
        PositionGranted(
            user_id=tl.user_id,
            position_id=position_id,
            unit_id=org.segment_id,
            role=Role.TEAM_LEADER,
            kind=AccessKind.ABSENCE,
            p30_id=p30_id,
            emergency=True,
        ),
        occurred_at=at,
    )
    granted = EmergencyAccessGranted(
        p30_id=p30_id,
        user_id=tl.user_id,
        position_id=position_id,
        requested_by=sm.user_id,
        p30_deadline=at + timedelta(days=5),
    )
    return await publish(commands, Topics.ACCESS_EVENTS, granted, occurred_at=at), granted


async def test_nt04_emergency_grant_tells_user_and_tl_sm_reminds_daily_then_escalates(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    tl, sm, boss = await _managed_org(org)
    t0 = datetime.now(UTC)
    envelope, granted = await _emergency(commands, org, tl, sm, t0)
    await event_log.wait_for(lambda: len(sent_events(event_log, envelope.message_id)) == 3)
    told = {(s.recipient_id, s.channel) for s in sent_events(event_log, envelope.message_id)}
    assert told == {(tl.user_id, "inbox"), (tl.user_id, "email"), (sm.user_id, "inbox")}
    assert {s.rule for s in sent_events(event_log, envelope.message_id)} == {"NT04"}
    series = f"p30:{granted.p30_id}"
    (first,) = await _schedule(notifications, series)
    assert first["kind"] == Kind.P30_REMINDER and first["status"] == "pending"

    runtime = notifications.runtime
    await fire_due_reminders(runtime, t0 + timedelta(hours=23))  # not yet due
    assert (await _schedule(notifications, series))[0]["status"] == "pending"
    await fire_due_reminders(runtime, t0 + timedelta(days=1) + SECOND)
    await fire_due_reminders(runtime, t0 + timedelta(days=1) + SECOND)  # fires once
    schedule = await _schedule(notifications, series)
    assert [(r["kind"], r["status"]) for r in schedule] == [
        (Kind.P30_REMINDER, "fired"),
        (Kind.P30_REMINDER, "pending"),
    ]
    source = uuid.UUID(schedule[0]["reminder_id"])
    await event_log.wait_for(lambda: sent_events(event_log, source))
    assert {s.recipient_id for s in sent_events(event_log, source) if s.channel == "inbox"} == {
        tl.user_id,
        sm.user_id,
    }
    # Days later, still no P30: the due reminder fires and the overdue P30 escalates to the
    # line manager.
    await fire_due_reminders(runtime, t0 + timedelta(days=6))
    assert await _told(event_log, notifications, series, Kind.P30_OVERDUE) == {
        tl.user_id,
        sm.user_id,
        boss.user_id,
    }
    await fire_due_reminders(runtime, t0 + timedelta(days=9))
    statuses = [r["status"] for r in await _schedule(notifications, series)]
    assert statuses == ["fired", "fired", "fired"]
    (escalation,) = [i for i in await inbox_of(notifications, boss.user_id) if i["rule"] == "NT04"]
    assert "overdue" in escalation["subject"]


async def test_nt04_reminders_stop_when_the_p30_arrives(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    tl, sm, _ = await _managed_org(org)
    t0 = datetime.now(UTC)
    envelope, granted = await _emergency(commands, org, tl, sm, t0)
    await event_log.wait_for(lambda: sent_events(event_log, envelope.message_id))
    series = f"p30:{granted.p30_id}"
    await publish(
        commands,
        Topics.ACCESS_EVENTS,
        P30Lodged(
            p30_id=granted.p30_id,
            user_id=tl.user_id,
            lodged_by=sm.user_id,
            lodged_at=t0,
            late=False,
        ),
    )

    async def cancelled() -> bool:
        return [r["status"] for r in await _schedule(notifications, series)] == ["cancelled"]

    await wait_until(cancelled)
    await fire_due_reminders(notifications.runtime, t0 + timedelta(days=10))
    assert [r["status"] for r in await _schedule(notifications, series)] == ["cancelled"]


async def test_nt04_access_service_overdue_signal_escalates_once(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    tl, sm, boss = await _managed_org(org)
    t0 = datetime.now(UTC)
    envelope, granted = await _emergency(commands, org, tl, sm, t0)
    await event_log.wait_for(lambda: sent_events(event_log, envelope.message_id))
    overdue = await publish(
        commands,
        Topics.ACCESS_EVENTS,
        EmergencyP30Overdue(
            p30_id=granted.p30_id,
            user_id=tl.user_id,
            requested_by=sm.user_id,
            escalate_to=boss.user_id,
            deadline=granted.p30_deadline,
        ),
    )
    await event_log.wait_for(lambda: sent_events(event_log, overdue.message_id))
    told = {
        s.recipient_id for s in sent_events(event_log, overdue.message_id) if s.channel == "inbox"
    }
    assert told == {tl.user_id, sm.user_id, boss.user_id}
    series = f"p30:{granted.p30_id}"
    await fire_due_reminders(notifications.runtime, t0 + timedelta(days=10))
    kinds = {(r["kind"], r["status"]) for r in await _schedule(notifications, series)}
    assert kinds == {(Kind.P30_REMINDER, "cancelled"), (Kind.P30_OVERDUE, "fired")}
    escalations = [i for i in await inbox_of(notifications, boss.user_id) if i["rule"] == "NT04"]
    assert len(escalations) == 1


async def test_nt05_review_announced_before_due_at_due_escalated_overdue_across_restart(
    org: Org, commands: CommandClient, event_log: EventLog, notifier: Notifier
) -> None:
    tl, sm, boss = await _managed_org(org)
    t0 = datetime.now(UTC)
    due = t0 + timedelta(days=182)
    grant = AccessGrantRecorded(
        grant_id=uuid.uuid4(),
        user_id=tl.user_id,
        position_id=uid("pos-absence"),
        unit_id=org.segment_id,
        kind=AccessKind.ABSENCE,
        p30_id=uuid.uuid4(),
        review_due_at=due,
    )
    await publish(commands, Topics.ACCESS_EVENTS, grant, occurred_at=t0)
    series = f"review:{grant.grant_id}"

    async def scheduled() -> bool:
        return len(await _schedule(notifier.running, series)) == 3

    await wait_until(scheduled)
    service = await notifier.restart()  # the schedule is in the database, not in memory

    # DL03: announced ten working days before it falls due.
    notice_at = review_notice_at(due)
    await fire_due_reminders(service.runtime, notice_at - SECOND)
    assert {r["status"] for r in await _schedule(service, series)} == {"pending"}
    await fire_due_reminders(service.runtime, notice_at + SECOND)
    await fire_due_reminders(service.runtime, notice_at + SECOND)
    assert await _told(event_log, service, series, Kind.REVIEW_UPCOMING) == {tl.user_id, sm.user_id}
    await fire_due_reminders(service.runtime, due + SECOND)
    assert await _told(event_log, service, series, Kind.REVIEW_DUE) == {tl.user_id, sm.user_id}
    await fire_due_reminders(service.runtime, due + timedelta(days=8))
    assert await _told(event_log, service, series, Kind.REVIEW_OVERDUE) == {
        tl.user_id,
        sm.user_id,
        boss.user_id,
    }
    notices = [i for i in await inbox_of(service, tl.user_id) if i["rule"] == "NT05"]
    assert sorted(i["kind"] for i in notices) == sorted(
        [Kind.REVIEW_UPCOMING, Kind.REVIEW_DUE, Kind.REVIEW_OVERDUE]
    )

    # Reviewed and confirmed: the next review is scheduled six months on.
    next_due = due + timedelta(days=182)
    await publish(
        commands,
        Topics.ACCESS_EVENTS,
        AbsenceAccessReviewed(
            grant_id=grant.grant_id,
            user_id=tl.user_id,
            position_id=grant.position_id,
            reviewed_by=sm.user_id,
            confirmed=True,
            next_review_due_at=next_due,
        ),
    )

    async def rescheduled() -> bool:
        pending = [r for r in await _schedule(service, series) if r["status"] == "pending"]
        return len(pending) == 3

    await wait_until(rescheduled)
    pending = [r for r in await _schedule(service, series) if r["status"] == "pending"]
    assert max(datetime.fromisoformat(r["due_at"]) for r in pending) == next_due + timedelta(days=7)


async def test_nt05_access_service_overdue_review_signal_escalates_once(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    tl, sm, boss = await _managed_org(org)
    due = datetime.now(UTC) + timedelta(days=182)
    grant = AccessGrantRecorded(
        grant_id=uuid.uuid4(),
        user_id=tl.user_id,
        position_id=uid("pos-absence"),
        unit_id=org.segment_id,
        kind=AccessKind.ABSENCE,
        p30_id=uuid.uuid4(),
        review_due_at=due,
    )
    await publish(commands, Topics.ACCESS_EVENTS, grant)
    series = f"review:{grant.grant_id}"
    overdue = await publish(
        commands,
        Topics.ACCESS_EVENTS,
        AbsenceReviewOverdue(
            grant_id=grant.grant_id,
            user_id=tl.user_id,
            position_id=grant.position_id,
            review_due_at=due,
            responsible=[sm.user_id],
            escalate_to=[boss.user_id],
        ),
    )
    await event_log.wait_for(lambda: sent_events(event_log, overdue.message_id))
    told = {
        s.recipient_id for s in sent_events(event_log, overdue.message_id) if s.channel == "inbox"
    }
    assert told == {tl.user_id, sm.user_id, boss.user_id}
    await fire_due_reminders(notifications.runtime, due + timedelta(days=30))
    statuses = {r["kind"]: r["status"] for r in await _schedule(notifications, series)}
    assert statuses == {
        Kind.REVIEW_UPCOMING: "cancelled",
        Kind.REVIEW_DUE: "cancelled",
        Kind.REVIEW_OVERDUE: "fired",
    }
    escalations = [i for i in await inbox_of(notifications, boss.user_id) if i["rule"] == "NT05"]
    assert len(escalations) == 1
