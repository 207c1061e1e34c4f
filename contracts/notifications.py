"""Notifications contracts: commands on `notifications.commands` (channel preferences, webhook
registrations, replay of parked deliveries), events on `notifications.events`, keyed by recipient
(delivery events) or by the user/webhook a command is about."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from contracts.envelope import Command, Event
from contracts.limits import LIST_MAX, Text, Url

# Parked deliveries replayed by one command (TR06).
REPLAY_MAX = 1000


class Channel(StrEnum):
    INBOX = "inbox"  # the in-app inbox; always on (NT07: nothing silently dropped)
    EMAIL = "email"
    WEBHOOK = "webhook"


# --- delivery outcomes -----------------------------------------------------------------------


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
    reason: Text


class NotificationParked(Event):
    TYPE: ClassVar[str] = "notifications.parked.v1"
    KEY_FIELD: ClassVar[str | None] = "recipient_id"

    notification_id: uuid.UUID
    recipient_id: str
    channel: str
    reason: Text


# --- commands ----------------------------------------------------------------------------------


class SetChannelPreferences(Command):
    """A user chooses the channels they are told on, besides the in-app inbox (always on)."""

    TYPE: ClassVar[str] = "notifications.set_channel_preferences.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    channels: list[Channel] = Field(max_length=LIST_MAX)


class ChannelPreferencesSet(Event):
    TYPE: ClassVar[str] = "notifications.channel_preferences_set.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    channels: list[Channel] = Field(max_length=LIST_MAX)


WebhookId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
EventType = Annotated[str, Field(min_length=1, max_length=64)]


class RegisterWebhook(Command):
    """An integration administrator (TR06) asks for a downstream system to be told of
    notifications of the named kinds (`*`: all) by an HTTP POST to `url`, which must be allowed
    by configuration. Each POST is signed with `secret`: `Casework-Signature: v1=<hex
    HMAC-SHA256(secret, "<Casework-Timestamp>.<body>")>`. The webhook id belongs to the
    administrator who registers it: registering it again (same owner) replaces the
    registration; nobody else may take it over. The secret is kept by the notifications service
    only: no event carries it (TR07)."""

    TYPE: ClassVar[str] = "notifications.register_webhook.v1"
    KEY_FIELD: ClassVar[str | None] = "webhook_id"

    webhook_id: WebhookId
    url: str = Field(pattern=r"^https?://", max_length=2048)
    secret: str = Field(min_length=16, max_length=256)
    event_types: list[EventType] = Field(min_length=1, max_length=32)


class WebhookRegistered(Event):
    """A webhook registered (never its secret, TR07); `owner_id`: the administrator it belongs
    to."""

    TYPE: ClassVar[str] = "notifications.webhook_registered.v1"
    KEY_FIELD: ClassVar[str | None] = "webhook_id"

    webhook_id: str
    url: Url
    event_types: list[str] = Field(max_length=LIST_MAX)
    owner_id: str | None = None


class RemoveWebhook(Command):
    """Its owner, an integration administrator (TR06), removes a webhook; deliveries to it not
    yet sent are parked (NT07), not sent. The id stays its owner's."""

    TYPE: ClassVar[str] = "notifications.remove_webhook.v1"
    KEY_FIELD: ClassVar[str | None] = "webhook_id"

    webhook_id: WebhookId


class WebhookRemoved(Event):
    TYPE: ClassVar[str] = "notifications.webhook_removed.v1"
    KEY_FIELD: ClassVar[str | None] = "webhook_id"

    webhook_id: str


class ReplayParkedDeliveries(Command):
    """An integration administrator (TR06) sends parked deliveries again (all parked ones if
    `delivery_ids` is empty)."""

    TYPE: ClassVar[str] = "notifications.replay_parked.v1"

    delivery_ids: list[uuid.UUID] = Field(default_factory=list, max_length=REPLAY_MAX)


class ParkedDeliveriesReplayed(Event):
    TYPE: ClassVar[str] = "notifications.parked_replayed.v1"

    delivery_ids: list[uuid.UUID] = Field(max_length=REPLAY_MAX)
