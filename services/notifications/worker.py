"""Background tasks: the delivery worker (e-mail, webhooks; NT07) and the reminder scan (NT04,
NT05). Both are functions of an explicit `now` so tests drive time; the loops call them with the
runtime's clock.

Delivery guarantee (NT07), precisely:

- Planning is exactly once. A delivery row is keyed by (source event id, recipient, channel,
  kind) and written in the transaction that consumed the source event (whose id the inbox
  records); a redelivered or replayed event, or a reminder scanned twice, plans nothing new.
- The in-app inbox is exactly once: the row is the inbox item.
- E-mail and webhooks are sent by `deliver_due`, which locks due rows (`FOR UPDATE SKIP
  LOCKED`), sends them, and marks each sent, failed (retry later, with exponential backoff) or
  parked (after `max_attempts`) in the same transaction, with the NotificationSent / Failed /
  Parked event in its outbox. A stop of the service lets the batch in flight finish first, so a
  stop or restart sends nothing twice.
- Only a crash of the process (or the database) after a send and before that transaction commits
  can make a message go out again, because SMTP and HTTP cannot join our transaction. The resend
  carries the same identity: the e-mail's `Message-ID: <delivery id@domain>` and the webhook's
  `Idempotency-Key: <delivery id>` header, so receivers that keep the ids they have seen get
  each notification exactly once; others get it at least once, never zero times.
- Nothing is dropped silently: a failure is retried, and after the limit the delivery is parked,
  listed by the read API (`GET /deliveries?status=parked`, for operators) and replayed by
  command (`ReplayParkedDeliveries`, by an integration administrator, TR06). A webhook target
  the policy refuses (TR06), or a webhook removed meanwhile, parks its delivery at once. A
  notice for a position the directory projection does not know yet is parked too (recipient
  `position:<id>`) and delivered when the position's grant arrives."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import datetime
from typing import Any

from contracts import Envelope
from services.notifications import domain
from services.notifications.channels import Channels, DeliveryError, DeliveryRefused
from services.notifications.handlers import reminders
from services.notifications.repository import Repositories, SqlDeliveries
from services.notifications.settings import DeliverySettings, SmtpSettings
from services.shared import logs
from services.shared.runtime import ServiceRuntime
from services.shared.transaction import Transaction

log = logs.get(__name__)


def _caused_by(
    work: Transaction, source_id: uuid.UUID, correlation_id: uuid.UUID | None
) -> Transaction:
    """The same transaction (connection, clock, outbox), its events caused by the source of a
    delivery or reminder, so callers find them by causation."""
    cause = Envelope(
        message_id=source_id,
        type="notifications.delivery_source",
        payload={},
        correlation_id=correlation_id or uuid.uuid4(),
        occurred_at=work.now,
    )
    return replace(work, cause=cause, emitted=work.emitted)


async def deliver_due(
    runtime: ServiceRuntime,
    channels: Channels,
    policy: domain.RetryPolicy,
    now: datetime,
    batch_size: int = 50,
) -> int:
    """Sends the pending deliveries due at `now`; returns how many were attempted."""
    async with runtime.transaction(now) as work:
        deliveries = SqlDeliveries(work.conn)
        rows = await deliveries.claim_due(now, batch_size)
        if not rows:
            return 0
        # A webhook delivery goes to the webhook's current registration (its owner may have
        # re-registered it with a new URL or secret); a removed one is parked (TR06).
        hooks = await deliveries.webhook_targets(
            [r.recipient_id for r in rows if r.channel == "webhook"]
        )
        results = await asyncio.gather(
            *(channels.send(r, hooks.get(r.recipient_id), now) for r in rows),
            return_exceptions=True,
        )
        for row, result in zip(rows, results, strict=True):
            if result is not None and not isinstance(result, DeliveryError):
                log.error("unexpected delivery error", error=repr(result))
            outcome = domain.attempt_outcome(
                domain.Attempt(
                    row.delivery_id, row.recipient_id, row.channel, row.kind, row.rule, row.attempts
                ),
                None if result is None else (str(result) or repr(result)),
                refused=isinstance(result, DeliveryRefused),
                policy=policy,
                now=now,
            )
            await deliveries.attempted(row.delivery_id, outcome.values)
            _caused_by(work, row.source_id, row.correlation_id).emit(outcome.event)
        return len(rows)


async def fire_due_reminders(runtime: ServiceRuntime, now: datetime, limit: int = 100) -> int:
    """NT04, NT05: fires every scheduled reminder due at `now`, once (see
    `handlers.reminders.fire_reminder`)."""
    fired = 0
    while True:
        async with runtime.transaction(now) as work:
            repos = Repositories.sql(work)
            rows = await repos.reminders.due(now, limit)
            for r in rows:
                await reminders.fire_reminder(_caused_by(work, r.reminder_id, None), repos, r)
        if not rows:
            return fired
        fired += len(rows)  # firing may schedule the next one, already due: scan again


Task = Callable[[ServiceRuntime], Coroutine[Any, Any, None]]


def delivery_task(
    smtp: SmtpSettings, settings: DeliverySettings, webhooks: domain.WebhookPolicy
) -> Task:
    async def run(runtime: ServiceRuntime) -> None:
        channels = Channels(smtp, settings, webhooks)
        try:
            while True:
                attempted = 0
                batch = asyncio.ensure_future(
                    deliver_due(
                        runtime, channels, settings.retry, runtime.clock(), settings.batch_size
                    )
                )
                try:
                    attempted = await asyncio.shield(batch)
                except asyncio.CancelledError:
                    # Stopping: let the sends in flight finish and be recorded, so that a stop
                    # or restart never sends anything twice.
                    with contextlib.suppress(Exception):
                        await batch
                    raise
                except Exception:
                    log.exception("delivery pass failed; retrying")
                if attempted < settings.batch_size:
                    await asyncio.sleep(settings.poll_seconds)
        finally:
            await channels.close()

    return run


def reminder_task(settings: DeliverySettings) -> Task:
    async def run(runtime: ServiceRuntime) -> None:
        while True:
            try:
                await fire_due_reminders(runtime, runtime.clock())
            except Exception:
                log.exception("reminder scan failed; retrying")
            await asyncio.sleep(settings.reminder_poll_seconds)

    return run
