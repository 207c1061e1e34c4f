"""Handler unit tests, without the broker or the database: who is told what (NT01-NT07,
DL02, TR06), each handler module on fake repositories."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from contracts.access import (
    AbsenceReviewDue,
    AccessKind,
    EmergencyAccessGranted,
    P30Lodged,
    PositionGranted,
    Role,
)
from contracts.allocation import BulkAssigned, StepType, WorkItemSnapshot, WorkState
from contracts.notifications import (
    NotificationParked,
    NotificationSent,
    RegisterWebhook,
    RemoveWebhook,
)
from contracts.signoff import RequestReturned, RequestSent
from services.notifications import domain
from services.notifications.handlers import (
    access_events,
    reminders,
    signoff_events,
    webhooks,
    work_landed,
)
from services.shared.identity import AppRole
from services.shared.rules import RuleViolation
from tests.notifications.fakes import NOW, FakeNotifications, handle, types


def snapshot(owner_id: str) -> WorkItemSnapshot:
    return WorkItemSnapshot(
        work_item_id=uuid.uuid4(),
        person_id="P-1",
        step_type=StepType.TRUSTED_ASSESSMENT,
        state=WorkState.INCOMING,
        owner_kind="worker",
        owner_id=owner_id,
        priority="normal",
    )


def bulk(to_position_id: str, to_user_id: str) -> BulkAssigned:
    return BulkAssigned(
        to_position_id=to_position_id,
        to_user_id=to_user_id,
        note="please",
        items=[snapshot(to_position_id), snapshot(to_position_id)],
        from_owners=[],
    )


async def test_nt01_bulk_assigned_work_is_one_notice_to_the_worker() -> None:
    repos = FakeNotifications()
    ctx = await handle(work_landed.bulk_assigned, bulk("pos-ta", "ta"), repos)
    assert repos.deliveries.told() == {("ta", "NT01")}
    assert types(ctx.events) == ["NotificationSent"]  # the inbox row is the delivery


async def test_nt07_a_notice_for_a_position_nobody_holds_yet_waits_for_its_holder() -> None:
    repos = FakeNotifications()
    ctx = await handle(work_landed.bulk_assigned, bulk("pos-new", ""), repos)
    (parked,) = ctx.events
    assert isinstance(parked, NotificationParked) and parked.reason == domain.WAITING_ERROR
    waiting = domain.Waiting(
        delivery_id=parked.notification_id,
        source_id=ctx.envelope.message_id,
        correlation_id=None,
        notice=domain.Notice(domain.Kind.WORK_LANDED, "NT01", "s", "b"),
    )
    repos.deliveries.waiting["pos-new"] = [waiting]
    granted = PositionGranted(
        user_id="new",
        position_id="pos-new",
        unit_id="north",
        role=Role.CASEWORKER,
        kind=AccessKind.PRIMARY,
    )
    await handle(access_events.position_granted, granted, repos)
    assert ("new", "NT01") in repos.deliveries.told()
    assert repos.deliveries.resolved_ids == [parked.notification_id]


async def test_nt02_nt03_requests_are_told_to_the_team_and_back_to_the_worker() -> None:
    repos = FakeNotifications()
    sent = RequestSent(
        request_id=uuid.uuid4(), step_id=uuid.uuid4(), person_id="P-1", title="t", team="North Team"
    )
    await handle(signoff_events.request_sent, sent, repos)
    returned = RequestReturned(
        request_id=uuid.uuid4(),
        step_id=uuid.uuid4(),
        person_id="P-1",
        note="redo",
        return_to_position_id="pos-ta",
    )
    await handle(signoff_events.request_returned, returned, repos)
    assert repos.deliveries.told() == {("so", "NT02"), ("ta", "NT03")}


async def test_nt06_secondary_access_is_told_an_emergency_grant_by_nt04_instead() -> None:
    repos = FakeNotifications()
    granted = PositionGranted(
        user_id="tl",
        position_id="tl@team-2",
        unit_id="team-2",
        role=Role.TEAM_LEADER,
        kind=AccessKind.ABSENCE,
    )
    await handle(access_events.position_granted, granted, repos)
    assert repos.deliveries.told() == {("tl", "NT06")}
    emergency = granted.model_copy(update={"user_id": "cw", "emergency": True})
    quiet = FakeNotifications()
    await handle(access_events.position_granted, emergency, quiet)
    assert quiet.deliveries.told() == set()


async def test_nt04_an_emergency_grant_is_told_and_reminded_until_the_p30_arrives() -> None:
    repos = FakeNotifications()
    p30_id = uuid.uuid4()
    granted = EmergencyAccessGranted(
        p30_id=p30_id,
        user_id="cw",
        position_id="pos-cw",
        requested_by="tl",
        p30_deadline=NOW + timedelta(days=2),
        actioned_by="admin",
    )
    await handle(access_events.emergency_access_granted, granted, repos)
    assert {u for u, rule in repos.deliveries.told()} == {"cw", "tl"}
    assert [r.kind for r in repos.reminders.pending()] == [domain.Kind.P30_REMINDER]
    await handle(
        reminders.p30_lodged,
        P30Lodged(p30_id=p30_id, user_id="cw", lodged_by="tl", lodged_at=NOW, late=False),
        repos,
    )
    assert repos.reminders.pending() == []


async def test_nt05_a_review_flagged_by_access_fires_its_reminder_once() -> None:
    repos = FakeNotifications()
    grant_id = uuid.uuid4()
    due = NOW + timedelta(days=5)
    for reminder in domain.review_reminders(due):
        await repos.reminders.schedule(
            series=domain.review_series(grant_id),
            reminder=reminder,
            deadline=due,
            user_id="cw",
            position_id="pos-cw",
        )
    flagged = AbsenceReviewDue(
        grant_id=grant_id,
        user_id="cw",
        position_id="pos-cw",
        review_due_at=due,
        responsible=["tl"],
    )
    ctx = await handle(reminders.absence_review_due, flagged, repos)
    assert {u for u, _ in repos.deliveries.told()} == {"cw", "tl"}
    assert all(isinstance(e, NotificationSent) for e in ctx.events)
    again = await handle(reminders.absence_review_due, flagged, repos)
    assert again.events == []  # fired once


async def test_tr06_only_an_integration_administrator_and_only_the_owner() -> None:
    register = webhooks.register_webhook(domain.WebhookPolicy())
    cmd = RegisterWebhook(
        webhook_id="hook", url="https://example.org/hook", secret="s" * 32, event_types=["*"]
    )
    with pytest.raises(RuleViolation, match=r"^TR06:"):
        await handle(register, cmd, FakeNotifications(), actor="ada")
    admin = frozenset({AppRole.INTEGRATION_ADMIN.value})
    with pytest.raises(RuleViolation, match=r"^TR06:"):  # no target allowed unconfigured
        await handle(register, cmd, FakeNotifications(), actor="ada", roles=admin)
    repos = FakeNotifications()
    repos.subscriptions.owners["hook"] = "grace"
    with pytest.raises(RuleViolation, match=r"^TR06:"):
        await handle(
            webhooks.remove_webhook,
            RemoveWebhook(webhook_id="hook"),
            repos,
            actor="ada",
            roles=admin,
        )
    await handle(
        webhooks.remove_webhook, RemoveWebhook(webhook_id="hook"), repos, actor="grace", roles=admin
    )
    assert repos.subscriptions.removed == ["hook"]


def test_nt07_an_attempt_is_sent_retried_or_parked_never_dropped() -> None:
    attempt = domain.Attempt(uuid.uuid4(), "cw", "email", "work_landed", "NT01", attempts=0)
    policy = domain.RetryPolicy(max_attempts=2)
    sent = domain.attempt_outcome(attempt, None, refused=False, policy=policy, now=NOW)
    assert sent.values["status"] == "sent" and isinstance(sent.event, NotificationSent)
    failed = domain.attempt_outcome(attempt, "timeout", refused=False, policy=policy, now=NOW)
    assert failed.values["next_attempt_at"] == NOW + policy.delay(1)
    parked = domain.attempt_outcome(
        domain.Attempt(attempt.delivery_id, "cw", "email", "work_landed", "NT01", attempts=1),
        "timeout",
        refused=False,
        policy=policy,
        now=NOW,
    )
    assert parked.values["status"] == "parked"
    refused = domain.attempt_outcome(attempt, "TR06: refused", refused=True, policy=policy, now=NOW)
    assert refused.values["status"] == "parked"  # TR06: at once, not retried


async def test_nt04_nt07_a_reminder_fired_by_the_scan_plans_its_notices_caused_by_it() -> None:
    from services.notifications import worker
    from services.shared.transaction import Transaction

    repos = FakeNotifications()
    deadline = NOW + timedelta(days=2)
    await repos.reminders.schedule(
        series=domain.p30_series(uuid.uuid4()),
        reminder=domain.p30_first_reminder(NOW, deadline),
        deadline=deadline,
        user_id="cw",
        position_id="pos-cw",
    )
    (due,) = repos.reminders.pending()
    work = Transaction.for_test(due.due_at)
    await reminders.fire_reminder(worker._caused_by(work, due.reminder_id, None), repos, due)
    assert {u for u, _ in repos.deliveries.told()} == {"cw", "tl"}
    assert work.emitted and all(
        '"causation_id":"' + str(due.reminder_id) + '"' in record.value.decode()
        for record in work.emitted
    )
    assert repos.reminders.status[due.reminder_id] == "fired"
    (following,) = repos.reminders.pending()  # the next one: a reminder or the escalation
    assert following.series == due.series
    assert following.kind in {domain.Kind.P30_REMINDER, domain.Kind.P30_OVERDUE}
