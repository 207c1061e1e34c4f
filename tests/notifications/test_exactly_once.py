"""NT07 over the real broker, database, SMTP server and HTTP receiver: once per recipient and
channel under redelivery, replay and restart; retries with backoff; parking and replay."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from contracts import Envelope, Topics
from contracts.access import Role
from contracts.notifications import (
    NotificationFailed,
    NotificationParked,
    NotificationSent,
    ParkedDeliveriesReplayed,
    ReplayParkedDeliveries,
)
from contracts.signoff import RequestReturned
from services.notifications import domain, handlers
from services.notifications.channels import Channels, DeliveryError, sign
from services.notifications.repository import Repositories
from services.notifications.service import build_spec
from services.notifications.settings import SmtpSettings, webhook_policy
from services.notifications.store import WebhookTarget
from services.notifications.worker import deliver_due
from services.shared.runtime import ServiceRuntime
from services.shared.settings import Settings
from tests.conftest import RunningService
from tests.notifications.conftest import (
    ADMIN,
    DELIVERY,
    Hook,
    Notifier,
    Org,
    Person,
    SmtpSink,
    WebhookReceiver,
    deliveries,
    outcomes,
    publish,
    register_webhook,
    remove_webhook,
    uid,
    wait_until,
    webhook_settings,
)
from tests.support.client import CommandClient, EventLog

KIND = "request_returned"


def _returned(worker: Person, person_id: str | None = None, note: str = "n") -> RequestReturned:
    return RequestReturned(
        request_id=uuid.uuid4(),
        step_id=uuid.uuid4(),
        person_id=person_id or uid("P"),
        note=note,
        return_to_position_id=worker.position_id,
    )


def _sent_on(event_log: EventLog, source: Envelope, channel: str) -> list[NotificationSent]:
    return [
        s for s in outcomes(event_log, source.message_id, NotificationSent) if s.channel == channel
    ]


def _message_ids(sink: SmtpSink, address: str) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in sink.to(address))


async def test_nt07_redelivered_event_sends_each_email_and_webhook_once_signed(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    smtp: tuple[SmtpSink, int],
    webhook: WebhookReceiver,
) -> None:
    hook = await register_webhook(commands, event_log, webhook, [KIND])
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR)
    await org.known()
    event = _returned(worker)
    envelope = await publish(commands, Topics.SIGNOFF_EVENTS, event)
    await publish(commands, Topics.SIGNOFF_EVENTS, event, envelope=envelope)  # delivered twice
    # A later event on the same key is consumed after both copies (same partition, in order).
    marker = await publish(commands, Topics.SIGNOFF_EVENTS, _returned(worker, event.person_id))

    def all_channels_sent() -> bool:
        return all(
            _sent_on(event_log, s, c)
            for s in (envelope, marker)
            for c in ("inbox", "email", "webhook")
        )

    await event_log.wait_for(all_channels_sent)
    sent = outcomes(event_log, envelope.message_id, NotificationSent)
    assert sorted(s.channel for s in sent) == ["email", "inbox", "webhook"]
    (email_sent,) = _sent_on(event_log, envelope, "email")
    (hook_sent,) = _sent_on(event_log, envelope, "webhook")
    assert (
        _message_ids(smtp[0], worker.email or "")[f"<{email_sent.notification_id}@casework.local>"]
        == 1
    )
    assert webhook.keys(hook.webhook_id).count(str(hook_sent.notification_id)) == 1
    # The webhook is signed with the registered secret over its timestamp and the exact body
    # (the receiver verified it before keeping it).
    headers, body = next(
        (h, b)
        for h, b in webhook.bodies(hook.webhook_id)
        if h["idempotency-key"] == str(hook_sent.notification_id)
    )
    timestamp = headers["casework-timestamp"]
    assert headers["casework-signature"] == sign(hook.secret, timestamp, body)
    assert (
        headers["casework-signature"]
        == "v1="
        + hmac.new(
            hook.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
    )
    assert headers["casework-signature"] != sign("another secret entirely", timestamp, body)
    assert headers["casework-signature"] != sign(hook.secret, int(timestamp) + 1, body)
    assert webhook.refused == []
    payload = json.loads(body)
    assert payload["rule"] == "NT03" and payload["data"]["recipients"] == [worker.user_id]
    await remove_webhook(commands, event_log, hook)


async def test_nt07_webhook_receiver_down_for_a_while_receives_everything_once_back(
    org: Org, commands: CommandClient, event_log: EventLog, webhook: WebhookReceiver
) -> None:
    hook = await register_webhook(commands, event_log, webhook, [KIND])
    webhook.down.add(hook.webhook_id)
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR, email=False)
    await org.known()
    sources = [await publish(commands, Topics.SIGNOFF_EVENTS, _returned(worker)) for _ in range(5)]

    def failed_twice() -> bool:
        return all(
            any(f.attempt >= 2 for f in outcomes(event_log, s.message_id, NotificationFailed))
            for s in sources
        )

    await event_log.wait_for(failed_twice)
    assert webhook.keys(hook.webhook_id) == []
    webhook.down.discard(hook.webhook_id)  # the receiver is back
    await event_log.wait_for(lambda: all(_sent_on(event_log, s, "webhook") for s in sources))
    keys = Counter(webhook.keys(hook.webhook_id))
    expected = {str(_sent_on(event_log, s, "webhook")[0].notification_id) for s in sources}
    assert set(keys) == expected and set(keys.values()) == {1}
    assert not any(outcomes(event_log, s.message_id, NotificationParked) for s in sources)
    await remove_webhook(commands, event_log, hook)


async def test_nt07_failing_delivery_is_parked_listed_and_replayed_by_an_operator(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    webhook: WebhookReceiver,
    notifications: RunningService,
) -> None:
    hook = await register_webhook(commands, event_log, webhook, [KIND])
    webhook.down.add(hook.webhook_id)
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR, email=False)
    await org.known()
    source = await publish(commands, Topics.SIGNOFF_EVENTS, _returned(worker))
    (parked,) = await event_log.wait_for(
        lambda: outcomes(event_log, source.message_id, NotificationParked)
    )
    failures = outcomes(event_log, source.message_id, NotificationFailed)
    assert [f.attempt for f in failures] == list(range(1, 8))  # 8 attempts, the last one parks
    assert "503" in parked.reason
    (row,) = await deliveries(notifications, status="parked", recipient_id=hook.webhook_id)
    assert row["delivery_id"] == str(parked.notification_id) and row["attempts"] == 8

    webhook.down.discard(hook.webhook_id)
    replay = await commands.send(
        ReplayParkedDeliveries(delivery_ids=[parked.notification_id]), ADMIN
    )
    (answer,) = await event_log.outcome(replay.message_id)
    assert ParkedDeliveriesReplayed.model_validate(answer.payload).delivery_ids == [
        parked.notification_id
    ]
    await event_log.wait_for(lambda: _sent_on(event_log, source, "webhook"))
    assert webhook.keys(hook.webhook_id) == [str(parked.notification_id)]
    assert await deliveries(notifications, status="parked", recipient_id=hook.webhook_id) == []
    await remove_webhook(commands, event_log, hook)


async def test_nt07_service_stopped_mid_delivery_then_topic_replayed_sends_each_once(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    smtp: tuple[SmtpSink, int],
    webhook: WebhookReceiver,
    notifier: Notifier,
) -> None:
    hook: Hook = await register_webhook(commands, event_log, webhook, [KIND])
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR)
    await org.known()
    webhook.gate = asyncio.Event()  # the receiver holds every request: deliveries in flight
    events = [_returned(worker, note=f"n{i}") for i in range(6)]
    sources = [await publish(commands, Topics.SIGNOFF_EVENTS, e) for e in events]

    async def in_flight() -> bool:
        return webhook.in_flight > 0

    await wait_until(in_flight)
    runtime = notifier.running.runtime
    stopping = asyncio.create_task(notifier.stop())

    async def cancelling() -> bool:
        return any(task.cancelling() for task in runtime._tasks)

    await wait_until(cancelling)
    webhook.gate.set()  # the sends in flight complete while the service stops
    await stopping
    webhook.gate = None

    # Start again reading every topic from the start (a new consumer group) and publish the
    # same events again: the inbox drops the copies, the delivery rows exist once.
    await notifier.start(consumer_group=uid("notifications-replay"))
    for event, source in zip(events, sources, strict=True):
        await publish(commands, Topics.SIGNOFF_EVENTS, event, envelope=source)
    marker = await publish(commands, Topics.SIGNOFF_EVENTS, _returned(worker, events[-1].person_id))
    everything = [*sources, marker]
    await event_log.wait_for(
        lambda: all(
            _sent_on(event_log, s, "email") and _sent_on(event_log, s, "webhook")
            for s in everything
        ),
        timeout=40,
    )
    mails = _message_ids(smtp[0], worker.email or "")
    keys = Counter(webhook.keys(hook.webhook_id))
    for source in everything:
        (mail,) = _sent_on(event_log, source, "email")
        (post,) = _sent_on(event_log, source, "webhook")
        assert mails[f"<{mail.notification_id}@casework.local>"] == 1
        assert keys[str(post.notification_id)] == 1
    assert sum(mails.values()) == len(everything) and sum(keys.values()) == len(everything)
    await remove_webhook(commands, event_log, hook)


class _RecordLost(Channels):
    """Sends for real, then behaves as if the process died before recording the send."""

    async def send(self, row: Any, hook: WebhookTarget | None, now: datetime) -> None:
        await super().send(row, hook, now)
        raise DeliveryError("simulated crash after the send, before it was recorded")


async def test_nt07_send_whose_record_was_lost_goes_again_with_the_same_message_id_and_key(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    smtp: tuple[SmtpSink, int],
    webhook: WebhookReceiver,
    notifier: Notifier,
    settings_for: Callable[..., Settings],
) -> None:
    """The one window SMTP and HTTP cannot close: a crash after the send and before the mark.
    The delivery goes again, and the receiver can tell it is the same notification."""
    hook = await register_webhook(commands, event_log, webhook, [KIND])
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR)
    await org.known()
    await notifier.stop()  # nothing else delivers while the crash is staged

    smtp_settings = SmtpSettings(host="127.0.0.1", port=smtp[1])
    settings = settings_for("notifications", **webhook_settings(webhook))
    bare = ServiceRuntime(build_spec(smtp_settings, DELIVERY, settings), settings)
    source, now = uuid.uuid4(), datetime.now(UTC)
    try:
        async with bare.transaction(now) as uow:
            notice = domain.request_returned(
                request_id=uuid.uuid4(), step_id=uuid.uuid4(), person_id=uid("P"), note="n"
            )
            await handlers.notify(
                uow,
                Repositories.sql(uow),
                notice,
                [worker.user_id],
                source_id=source,
                correlation_id=None,
            )
            uow.emitted.clear()  # only the planned rows matter here, not the planning's events
        crashing = _RecordLost(smtp_settings, DELIVERY, webhook_policy(settings))
        await deliver_due(bare, crashing, DELIVERY.retry, now)
        await crashing.close()
    finally:
        await bare.engine.dispose()
    email_id = domain.delivery_id(source, worker.user_id, "email", KIND)
    hook_id = domain.delivery_id(source, hook.webhook_id, "webhook", KIND)
    assert webhook.keys(hook.webhook_id) == [str(hook_id)]
    assert _message_ids(smtp[0], worker.email or "") == Counter({f"<{email_id}@casework.local>": 1})

    # The worker finds both unrecorded and sends them again.
    await notifier.start(consumer_group=uid("notifications-restart"))
    await event_log.wait_for(
        lambda: (
            {s.channel for s in outcomes(event_log, source, NotificationSent)}
            == {"email", "webhook"}
        )
    )
    assert webhook.keys(hook.webhook_id) == [str(hook_id), str(hook_id)]
    assert _message_ids(smtp[0], worker.email or "") == Counter({f"<{email_id}@casework.local>": 2})
    sent = outcomes(event_log, source, NotificationSent)
    assert sorted(s.notification_id for s in sent) == sorted([email_id, hook_id])
    await remove_webhook(commands, event_log, hook)
