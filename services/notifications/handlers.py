"""Notifications' message handlers: project what is needed to find recipients, decide who is told
what (domain), and plan the deliveries in the transaction that consumed the event (store).

Planning writes one row per recipient and channel (NT07); the in-app inbox rows are delivered by
that write (NotificationSent is emitted with them), e-mail and webhook rows are sent afterwards by
the delivery worker (`services.notifications.worker`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from contracts import Event, Topics
from contracts.access import (
    AbsenceAccessReviewed,
    AbsenceReviewDue,
    AbsenceReviewOverdue,
    AccessGrantEnded,
    AccessGrantRecorded,
    AccessKind,
    EmergencyAccessGranted,
    EmergencyAccessScheduled,
    EmergencyP30Overdue,
    P30Lodged,
    P30Refused,
    PositionGranted,
    PositionRevoked,
)
from contracts.allocation import (
    AbsentCaseworkerWorkMovedV2,
    BulkAssigned,
    InvolvedWorkerPrompted,
    WorkItemAssignedV2,
    WorkItemCreatedV2,
    WorkItemDueV2,
    WorkItemMovedV2,
    WorkItemOverdueV2,
    WorkItemSnapshot,
)
from contracts.notifications import (
    ChannelPreferencesSet,
    NotificationParked,
    NotificationSent,
    ParkedDeliveriesReplayed,
    RegisterWebhook,
    RemoveWebhook,
    ReplayParkedDeliveries,
    SetChannelPreferences,
    WebhookRegistered,
    WebhookRemoved,
)
from contracts.signoff import RequestReturned, RequestSent
from services.notifications import domain, store
from services.shared import directory
from services.shared.rules import RuleViolation
from services.shared.transaction import Dispatcher, HandlerContext

dispatcher = Dispatcher()
CONSUMES = [
    Topics.ALLOCATION_EVENTS,
    Topics.SIGNOFF_EVENTS,
    Topics.ACCESS_EVENTS,
    Topics.NOTIFICATIONS_COMMANDS,
]

Emit = Callable[[Event], Any]


async def notify(
    conn: Any,
    emit: Emit,
    *,
    source_id: uuid.UUID,
    correlation_id: uuid.UUID | None,
    now: datetime,
    notice: domain.Notice,
    user_ids: Sequence[str],
) -> list[domain.Delivery]:
    """Plans a notice for its recipients on their channels and the webhooks that want it (NT07:
    once per recipient and channel, whatever the number of times this runs for one source).
    A recipient given as `domain.waiting_for(position)` waits for the position's holder."""
    waiting = [u for u in user_ids if u.startswith(domain.WAITING_PREFIX)]
    users = [u for u in user_ids if not u.startswith(domain.WAITING_PREFIX)]
    recipients, hooks = await store.audience(conn, users, notice.kind)
    planned = domain.plan_deliveries(source_id, notice, recipients, hooks, waiting)
    new = await store.insert_deliveries(
        conn, planned, source_id=source_id, correlation_id=correlation_id, now=now
    )
    for d in new:
        if d.waiting:
            emit(
                NotificationParked(
                    notification_id=d.delivery_id,
                    recipient_id=d.recipient_id,
                    channel=d.channel,
                    reason=store.WAITING_ERROR,
                )
            )
        elif d.channel == "inbox":
            emit(
                NotificationSent(
                    notification_id=d.delivery_id,
                    recipient_id=d.recipient_id,
                    channel=d.channel,
                    kind=d.kind,
                    rule=d.rule,
                )
            )
    return new


async def _notify(
    ctx: HandlerContext[Any],
    notice: domain.Notice,
    user_ids: Sequence[str],
) -> None:
    await notify(
        ctx.conn,
        ctx.emit,
        source_id=ctx.envelope.message_id,
        correlation_id=ctx.envelope.correlation_id,
        now=ctx.now,
        notice=notice,
        user_ids=user_ids,
    )


async def _worker_user(
    ctx: HandlerContext[Any], position_id: str | None, user_id: str | None = None
) -> list[str]:
    """The user holding a position; if the directory does not know it yet, the notice waits
    for the holder (NT07)."""
    if not position_id and not user_id:
        return []
    user = user_id or await store.user_of_position(ctx.conn, position_id)
    return [user or domain.waiting_for(position_id or "")]


async def _item_landed(
    ctx: HandlerContext[Any], item: WorkItemSnapshot, how: str, note: str = ""
) -> None:
    """NT01: an item now owned by a worker position is new work for its holder."""
    if item.owner_kind != "worker":
        return
    notice = domain.work_landed(
        work_item_id=item.work_item_id,
        person_id=item.person_id,
        what=item.step_type.value,
        how=how,
        note=note,
    )
    await _notify(ctx, notice, await _worker_user(ctx, item.owner_id, item.owner_user_id))


# --- allocation.events (NT01) --------------------------------------------------------------
# Work lands in a worker's incoming work when allocation says so: an item created for a worker
# (a next action sent to them, SO09), assigned or reassigned to them (AL06, AL09), bulk assigned
# (AL08), or moved to them (AC07, AC16).


@dispatcher.on(WorkItemCreatedV2)
async def work_item_created(ctx: HandlerContext[WorkItemCreatedV2]) -> None:
    """NT01: a new item in a worker's incoming work (a next action sent to them)."""
    m = ctx.message
    await _item_landed(ctx, m.items[0], "next action sent", m.note)


@dispatcher.on(WorkItemAssignedV2)
async def work_item_assigned(ctx: HandlerContext[WorkItemAssignedV2]) -> None:
    """NT01: assignment and reassignment."""
    m = ctx.message
    await _item_landed(ctx, m.items[0], "reassignment" if m.reassigned else "assignment", m.note)


@dispatcher.on(WorkItemMovedV2)
async def work_item_moved(ctx: HandlerContext[WorkItemMovedV2]) -> None:
    """NT01: work moved to a worker (an absent caseworker's cases, released work)."""
    m = ctx.message
    await _item_landed(ctx, m.items[0], f"moved ({m.rule})", m.note)


@dispatcher.on(AbsentCaseworkerWorkMovedV2)
async def absent_work_moved(ctx: HandlerContext[AbsentCaseworkerWorkMovedV2]) -> None:
    """NT01: an absent caseworker's cases moved to another caseworker (AC07)."""
    m = ctx.message
    if m.to_owner.kind != "worker" or not m.items:
        return
    notice = domain.bulk_landed(
        items=[(i.work_item_id, i.person_id, i.step_type.value) for i in m.items],
        how="moved from an absent caseworker",
        note="",
    )
    await _notify(ctx, notice, await _worker_user(ctx, m.to_owner.id, m.items[0].owner_user_id))


@dispatcher.on(BulkAssigned)
async def bulk_assigned(ctx: HandlerContext[BulkAssigned]) -> None:
    """NT01: bulk assignment (AL08): one notice naming every item."""
    m = ctx.message
    notice = domain.bulk_landed(
        items=[(i.work_item_id, i.person_id, i.step_type.value) for i in m.items],
        how="bulk assignment",
        note=m.note,
    )
    await _notify(ctx, notice, await _worker_user(ctx, m.to_position_id, m.to_user_id))


async def _deadline(ctx: HandlerContext[Any], item: WorkItemSnapshot, *, overdue: bool) -> None:
    """DL02: the assignee and their Senior Officer or team leader (of the team or segment that
    owns the work) are told, once per item and flag."""
    assignee = (
        await _worker_user(ctx, item.owner_id, item.owner_user_id)
        if item.owner_kind == "worker"
        else []
    )
    leaders = (
        await store.members_with_roles(ctx.conn, [item.owner_unit_id], domain.DEADLINE_LEADER_ROLES)
        if item.owner_unit_id
        else []
    )
    due_at = ctx.message.due_at
    notice = domain.deadline_notice(
        overdue=overdue,
        work_item_id=item.work_item_id,
        person_id=item.person_id,
        what=item.step_type.value,
        due_at=due_at,
    )
    await notify(
        ctx.conn,
        ctx.emit,
        source_id=domain.deadline_source(item.work_item_id, notice.kind),
        correlation_id=ctx.envelope.correlation_id,
        now=ctx.now,
        notice=notice,
        user_ids=domain.deadline_recipients(assignee, leaders),
    )


@dispatcher.on(WorkItemDueV2)
async def work_item_due(ctx: HandlerContext[WorkItemDueV2]) -> None:
    """DL02: the work falls due today."""
    await _deadline(ctx, ctx.message.items[0], overdue=False)


@dispatcher.on(WorkItemOverdueV2)
async def work_item_overdue(ctx: HandlerContext[WorkItemOverdueV2]) -> None:
    """DL02: the work is overdue."""
    await _deadline(ctx, ctx.message.items[0], overdue=True)


# --- signoff.events (NT02, NT03) -----------------------------------------------------------


@dispatcher.on(InvolvedWorkerPrompted)
async def involved_worker_prompted(ctx: HandlerContext[InvolvedWorkerPrompted]) -> None:
    """SO10, AL11: prompt the Senior Officer who sent the transfer to record Involved Worker."""
    m = ctx.message
    notice = domain.record_involved_worker(
        work_item_id=m.work_item_id,
        person_id=m.person_id,
        worker_user_id=m.worker_user_id,
        worker_position_id=m.worker_position_id,
    )
    await _notify(
        ctx, notice, await _worker_user(ctx, m.senior_officer_position_id, m.senior_officer_user_id)
    )


@dispatcher.on(RequestSent)
async def request_sent(ctx: HandlerContext[RequestSent]) -> None:
    """NT02: the Senior Officers of the receiving team are told a request arrived."""
    m = ctx.message
    unit_id = await store.find_unit_id(ctx.conn, m.team)
    officers = (
        await store.members_with_roles(ctx.conn, [unit_id], [domain.SENIOR_OFFICER])
        if unit_id
        else []
    )
    notice = domain.request_arrived(
        request_id=m.request_id, person_id=m.person_id, title=m.title, team=m.team
    )
    await _notify(ctx, notice, officers)


@dispatcher.on(RequestReturned)
async def request_returned(ctx: HandlerContext[RequestReturned]) -> None:
    """NT03: the worker who completed the step is told, with the note."""
    m = ctx.message
    notice = domain.request_returned(
        request_id=m.request_id, step_id=m.step_id, person_id=m.person_id, note=m.note
    )
    await _notify(ctx, notice, await _worker_user(ctx, m.return_to_position_id))


# --- access.events (directory, NT04, NT05, NT06) -------------------------------------------

directory.register(dispatcher, store.directory_t)


def p30_series(p30_id: uuid.UUID) -> str:
    return f"p30:{p30_id}"


def review_series(grant_id: uuid.UUID) -> str:
    return f"review:{grant_id}"


async def fire_reminder(
    conn: Any, emit: Emit, r: Any, now: datetime, extra_users: Sequence[str] = ()
) -> None:
    """NT04, NT05: a scheduled reminder fires once: it is marked fired in the transaction that
    plans its notices, which are keyed by the reminder's id. Recipients are the user holding the
    access and the TL/SM responsible (and whoever the access service names); an escalation also
    goes to their line managers. A P30 reminder schedules the next one, or the escalation once
    the P30 is overdue."""
    unit_id = await store.position_unit(conn, r.position_id) or ""
    users = [
        r.user_id,
        *await store.responsible_managers(conn, r.user_id, unit_id),
        *extra_users,
    ]
    if r.escalate:
        users += await store.line_managers(conn, users)
    notice = domain.reminder_notice(
        r.kind,
        user_id=r.user_id,
        position_id=r.position_id,
        unit=await store.unit_name(conn, unit_id) if unit_id else r.position_id,
        deadline=r.deadline,
    )
    await notify(
        conn,
        emit,
        source_id=r.reminder_id,
        correlation_id=None,
        now=now,
        notice=notice,
        user_ids=users,
    )
    await store.mark_fired(conn, r.reminder_id, now)
    if r.kind == domain.Kind.P30_REMINDER:
        await store.schedule(
            conn,
            series=r.series,
            reminder=domain.p30_next_reminder(max(now, r.due_at), r.deadline),
            deadline=r.deadline,
            user_id=r.user_id,
            position_id=r.position_id,
        )


async def _fire_now(
    ctx: HandlerContext[Any], series: str, kind: str, extra_users: Sequence[str]
) -> None:
    """The access service says a reminder's moment has come: fire our pending one of that kind
    now (it fires once, whichever of the two comes first) and drop the stale ones before it."""
    for r in await store.pending_in_series(ctx.conn, series, kind):
        await fire_reminder(ctx.conn, ctx.emit, r, ctx.now, extra_users)
        await store.cancel_series(ctx.conn, series, due_before=r.due_at)


@dispatcher.on(PositionGranted)
async def position_granted(ctx: HandlerContext[PositionGranted]) -> None:
    """Projects the grant and delivers the notices that waited for the position's holder (NT07);
    NT06: the user is told of secondary access (an emergency grant is told by NT04 instead)."""
    m = ctx.message
    for waiting in await store.waiting_for(ctx.conn, m.position_id):
        # NT07: a notice that arrived before the directory knew the position's holder.
        notice = domain.Notice(
            waiting.kind, waiting.rule, waiting.subject, waiting.body, waiting.data
        )
        await notify(
            ctx.conn,
            ctx.emit,
            source_id=waiting.source_id,
            correlation_id=waiting.correlation_id,
            now=ctx.now,
            notice=notice,
            user_ids=[m.user_id],
        )
        await store.mark_resolved(ctx.conn, waiting.delivery_id, ctx.now)
    if not domain.is_secondary(m.kind.value) or m.emergency:
        return
    notice = domain.access_changed(
        granted=True,
        user_id=m.user_id,
        position_id=m.position_id,
        unit=await store.unit_name(ctx.conn, m.unit_id),
        kind=m.kind.value,
    )
    await _notify(ctx, notice, [m.user_id])


@dispatcher.on(PositionRevoked)
async def position_revoked(ctx: HandlerContext[PositionRevoked]) -> None:
    """Projects the removal; NT06: the user is told of removed secondary access."""
    m = ctx.message
    before = await store.directory.position(ctx.conn, m.position_id, active_only=False)
    if before is None or not domain.is_secondary(before.kind):
        return
    notice = domain.access_changed(
        granted=False,
        user_id=m.user_id,
        position_id=m.position_id,
        unit=await store.unit_name(ctx.conn, before.unit_id),
        kind=before.kind,
    )
    await _notify(ctx, notice, [m.user_id])


@dispatcher.on(EmergencyAccessGranted)
async def emergency_access_granted(ctx: HandlerContext[EmergencyAccessGranted]) -> None:
    """NT04: the user and the TL/SM responsible are told, and reminded until the P30 arrives."""
    m = ctx.message
    unit_id = await store.position_unit(ctx.conn, m.position_id) or ""
    managers = await store.responsible_managers(ctx.conn, m.user_id, unit_id)
    notice = domain.emergency_granted(
        user_id=m.user_id,
        position_id=m.position_id,
        unit=await store.unit_name(ctx.conn, unit_id) if unit_id else m.position_id,
        p30_due=m.p30_deadline,
    )
    await _notify(ctx, notice, [m.user_id, m.requested_by, *managers])
    await store.schedule(
        ctx.conn,
        series=p30_series(m.p30_id),
        reminder=domain.p30_first_reminder(ctx.envelope.occurred_at, m.p30_deadline),
        deadline=m.p30_deadline,
        user_id=m.user_id,
        position_id=m.position_id,
    )


@dispatcher.on(EmergencyAccessScheduled)
async def emergency_access_scheduled(ctx: HandlerContext[EmergencyAccessScheduled]) -> None:
    """NT04, AC21: the requester (and the user) are told the access team's time scale; the
    grant, when made, is told by EmergencyAccessGranted."""
    m = ctx.message
    notice = domain.emergency_scheduled(
        user_id=m.user_id,
        unit=await store.unit_name(ctx.conn, m.unit_id),
        grant_at=m.grant_at,
        answered_by=m.answered_by,
    )
    await _notify(ctx, notice, [m.requested_by, m.user_id])


@dispatcher.on(P30Refused)
async def p30_refused(ctx: HandlerContext[P30Refused]) -> None:
    """AC20: the requester is told the access team refused the P30."""
    m = ctx.message
    notice = domain.p30_refused(
        user_id=m.user_id, p30_id=m.p30_id, refused_by=m.refused_by, reason=m.reason
    )
    await _notify(ctx, notice, [m.requested_by])


@dispatcher.on(P30Lodged)
async def p30_lodged(ctx: HandlerContext[P30Lodged]) -> None:
    """NT04: the P30 arrived; the reminders stop."""
    await store.cancel_series(ctx.conn, p30_series(ctx.message.p30_id))


@dispatcher.on(EmergencyP30Overdue)
async def emergency_p30_overdue(ctx: HandlerContext[EmergencyP30Overdue]) -> None:
    """NT04: an overdue P30 escalates to the line manager (once, whether our schedule or the
    access service notices first)."""
    m = ctx.message
    series = p30_series(m.p30_id)
    pending = await store.pending_in_series(ctx.conn, series, domain.Kind.P30_REMINDER)
    if pending:  # the escalation is due now, in place of the remaining reminders
        await store.schedule(
            ctx.conn,
            series=series,
            reminder=domain.Reminder(domain.Kind.P30_OVERDUE, m.deadline, escalate=True),
            deadline=m.deadline,
            user_id=m.user_id,
            position_id=pending[0].position_id,
        )
    extra = [u for u in (m.requested_by, m.escalate_to) if u]
    await _fire_now(ctx, series, domain.Kind.P30_OVERDUE, extra)
    await store.cancel_series(ctx.conn, series)


@dispatcher.on(AccessGrantRecorded)
async def access_grant_recorded(ctx: HandlerContext[AccessGrantRecorded]) -> None:
    """NT05: absence-related access is reviewed every six months: announce the review before it
    falls due, when due, and escalate when overdue."""
    m = ctx.message
    if m.kind is not AccessKind.ABSENCE:
        return
    await _schedule_review(
        ctx, m.grant_id, m.user_id, m.position_id, m.review_due_at or domain.review_due(ctx.now)
    )


async def _schedule_review(
    ctx: HandlerContext[Any], grant_id: uuid.UUID, user_id: str, position_id: str, due: datetime
) -> None:
    for reminder in domain.review_reminders(due):
        await store.schedule(
            ctx.conn,
            series=review_series(grant_id),
            reminder=reminder,
            deadline=due,
            user_id=user_id,
            position_id=position_id,
        )


@dispatcher.on(AbsenceAccessReviewed)
async def absence_access_reviewed(ctx: HandlerContext[AbsenceAccessReviewed]) -> None:
    """NT05: a review done ends its reminders; a confirmed access is reviewed again later."""
    m = ctx.message
    await store.cancel_series(ctx.conn, review_series(m.grant_id))
    if m.confirmed and m.next_review_due_at is not None:
        await _schedule_review(ctx, m.grant_id, m.user_id, m.position_id, m.next_review_due_at)


@dispatcher.on(AccessGrantEnded)
async def access_grant_ended(ctx: HandlerContext[AccessGrantEnded]) -> None:
    """NT05: nothing to review once the grant has ended."""
    await store.cancel_series(ctx.conn, review_series(ctx.message.grant_id))


@dispatcher.on(AbsenceReviewDue)
async def absence_review_due(ctx: HandlerContext[AbsenceReviewDue]) -> None:
    """NT05: the access service flags a review falling due: announce it (once)."""
    m = ctx.message
    await _fire_now(ctx, review_series(m.grant_id), domain.Kind.REVIEW_UPCOMING, m.responsible)


@dispatcher.on(AbsenceReviewOverdue)
async def absence_review_overdue(ctx: HandlerContext[AbsenceReviewOverdue]) -> None:
    """NT05: the access service flags an overdue review: escalate it (once)."""
    m = ctx.message
    extra = [*m.responsible, *m.escalate_to]
    await _fire_now(ctx, review_series(m.grant_id), domain.Kind.REVIEW_OVERDUE, extra)


# --- notifications.commands ----------------------------------------------------------------


@dispatcher.on(SetChannelPreferences)
async def set_channel_preferences(ctx: HandlerContext[SetChannelPreferences]) -> None:
    m = ctx.message
    channels = domain.check_preferences(
        ctx.actor.user_id if ctx.actor else None, m.user_id, m.channels
    )
    await store.set_preferences(ctx.conn, m.user_id, channels, ctx.now)
    ctx.emit(ChannelPreferencesSet(user_id=m.user_id, channels=channels))  # type: ignore[arg-type]


def _actor_id(ctx: HandlerContext[Any]) -> str:
    if ctx.actor is None:  # commands always have one, verified (TR02)
        raise RuleViolation("TR02", "a command needs a verified actor")
    return ctx.actor.user_id


async def register_webhook(
    ctx: HandlerContext[RegisterWebhook], policy: domain.WebhookPolicy
) -> None:
    """TR06: an integration administrator registers a webhook for a target the configuration
    allows; the id is theirs from then on. The event names no secret (TR07)."""
    m = ctx.message
    user_id = _actor_id(ctx)
    domain.require_integration_admin(ctx.roles, "registering a webhook")
    policy.check_url(m.url)
    owner = await store.webhook_owner(ctx.conn, m.webhook_id)
    domain.check_webhook_owner(user_id, m.webhook_id, owner)
    stored = await store.upsert_webhook(
        ctx.conn, m.webhook_id, m.url, m.secret, m.event_types, ctx.now, user_id
    )
    if not stored:  # taken by someone else between the read and the write
        raise RuleViolation(
            "TR06", f"webhook {m.webhook_id!r} belongs to another integration administrator"
        )
    ctx.emit(
        WebhookRegistered(
            webhook_id=m.webhook_id, url=m.url, event_types=m.event_types, owner_id=user_id
        )
    )


@dispatcher.on(RegisterWebhook)
async def register_webhook_unconfigured(ctx: HandlerContext[RegisterWebhook]) -> None:
    """Without a configured policy (see `dispatcher_for`) no target is allowed."""
    await register_webhook(ctx, domain.WebhookPolicy())


@dispatcher.on(RemoveWebhook)
async def remove_webhook(ctx: HandlerContext[RemoveWebhook]) -> None:
    """TR06: only the owner, an integration administrator, removes a webhook; deliveries to it
    not yet sent are parked by the worker, not sent."""
    webhook_id = ctx.message.webhook_id
    user_id = _actor_id(ctx)
    domain.require_integration_admin(ctx.roles, "removing a webhook")
    owner = await store.webhook_owner(ctx.conn, webhook_id)
    domain.check_webhook_owner(user_id, webhook_id, owner)
    await store.remove_webhook(ctx.conn, webhook_id, ctx.now)
    ctx.emit(WebhookRemoved(webhook_id=webhook_id))


@dispatcher.on(ReplayParkedDeliveries)
async def replay_parked(ctx: HandlerContext[ReplayParkedDeliveries]) -> None:
    """NT07: parked deliveries are sent again; TR06: by an integration administrator."""
    domain.require_integration_admin(ctx.roles, "replaying parked deliveries")
    replayed = await store.unpark(ctx.conn, ctx.message.delivery_ids, ctx.now)
    ctx.emit(ParkedDeliveriesReplayed(delivery_ids=replayed))


def dispatcher_for(policy: domain.WebhookPolicy) -> Dispatcher:
    """The service's handlers with webhook registration bound to the configured targets and
    addresses (TR06)."""
    bound = dispatcher.without(RegisterWebhook)

    @bound.on(RegisterWebhook)
    async def register(ctx: HandlerContext[RegisterWebhook]) -> None:
        await register_webhook(ctx, policy)

    return bound
