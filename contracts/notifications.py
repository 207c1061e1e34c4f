"""Notifications contracts: events on `notifications.events`, keyed by recipient."""

from __future__ import annotations

import uuid
from typing import ClassVar

from contracts.envelope import Event


class NotificationSent(Event):
    TYPE: ClassVar[str] = "notifications.sent.v1"
    KEY_FIELD: ClassVar[str | None] = "recipient_id"

    notification_id: uuid.UUID
    recipient_id: str
    channel: str  # "inbox" | "email" | "webhook"
    kind: str
    rule: str  # the NT rule that asked for it


class NotificationFailed(Event):
    TYPE: ClassVar[str] = "notifications.failed.v1"
    KEY_FIELD: ClassVar[str | None] = "recipient_id"

    notification_id: uuid.UUID
    recipient_id: str
    channel: str
    attempt: int
    reason: str


class NotificationParked(Event):
    TYPE: ClassVar[str] = "notifications.parked.v1"
    KEY_FIELD: ClassVar[str | None] = "recipient_id"

    notification_id: uuid.UUID
    recipient_id: str
    channel: str
    reason: str
