"""Notifications contracts: commands on `notifications.commands` (channel preferences, webhook
registrations, replay of parked deliveries), events on `notifications.events`, keyed by recipient
(delivery events) or by the user/webhook a command is about."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from contracts.envelope import Command, Event


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
    reason: str


class NotificationParked(Event):
    TYPE: ClassVar[str] = "notifications.parked.v1"
    KEY_FIELD: ClassVar[str | None] = "recipient_id"

    notification_id: uuid.UUID
    recipient_id: str
    channel: str
    reason: str


# --- commands ----------------------------------------------------------------------------------


class SetChannelPreferences(Command):
    """A user chooses the channels they are told on, besides the in-app inbox (always on)."""

    TYPE: ClassVar[str] = "notifications.set_channel_preferences.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str = Field(min_length=1)
    channels: list[Channel]


class ChannelPreferencesSet(Event):
    TYPE: ClassVar[str] = "notifications.channel_preferences_set.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    channels: list[Channel]


class RegisterWebhook(Command):
    """A downstream system asks to be told of notifications of the named kinds (`*`: all) by an
    HTTP POST to `url`, signed with HMAC-SHA256 over the body using `secret`. Registering the same
    webhook id again replaces the registration."""

    TYPE: ClassVar[str] = "notifications.register_webhook.v1"
    KEY_FIELD: ClassVar[str | None] = "webhook_id"

    webhook_id: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=16)
    event_types: list[str] = Field(min_length=1)


class WebhookRegistered(Event):
    TYPE: ClassVar[str] = "notifications.webhook_registered.v1"
    KEY_FIELD: ClassVar[str | None] = "webhook_id"

    webhook_id: str
    url: str
    event_types: list[str]


class RemoveWebhook(Command):
    TYPE: ClassVar[str] = "notifications.remove_webhook.v1"
    KEY_FIELD: ClassVar[str | None] = "webhook_id"

    webhook_id: str = Field(min_length=1)


class WebhookRemoved(Event):
    TYPE: ClassVar[str] = "notifications.webhook_removed.v1"
    KEY_FIELD: ClassVar[str | None] = "webhook_id"

    webhook_id: str


class ReplayParkedDeliveries(Command):
    """An operator sends parked deliveries again (all parked ones if `delivery_ids` is empty)."""

    TYPE: ClassVar[str] = "notifications.replay_parked.v1"

    delivery_ids: list[uuid.UUID] = Field(default_factory=list)


class ParkedDeliveriesReplayed(Event):
    TYPE: ClassVar[str] = "notifications.parked_replayed.v1"

    delivery_ids: list[uuid.UUID]
