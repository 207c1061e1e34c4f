"""notifications.commands: a user's channel preferences, and the webhook administration of
integration administrators (TR06), with the replay of parked deliveries (NT07)."""

from __future__ import annotations

from contracts.notifications import (
    ChannelPreferencesSet,
    ParkedDeliveriesReplayed,
    RegisterWebhook,
    RemoveWebhook,
    ReplayParkedDeliveries,
    SetChannelPreferences,
    WebhookRegistered,
    WebhookRemoved,
)
from services.notifications import domain
from services.notifications.handlers._notify import Ctx, Handler
from services.notifications.repository import Repositories
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext


def _actor_id(ctx: Ctx) -> str:
    if ctx.actor is None:  # commands always have one, verified (TR02)
        raise RuleViolation("TR02", "a command needs a verified actor")
    return ctx.actor.user_id


async def set_channel_preferences(
    ctx: HandlerContext[SetChannelPreferences], repos: Repositories
) -> None:
    m = ctx.message
    channels = domain.check_preferences(
        ctx.actor.user_id if ctx.actor else None, m.user_id, m.channels
    )
    await repos.subscriptions.set_preferences(m.user_id, channels, ctx.now)
    ctx.emit(ChannelPreferencesSet(user_id=m.user_id, channels=channels))  # type: ignore[arg-type]


def register_webhook(policy: domain.WebhookPolicy) -> Handler:
    """The registration handler for the configured targets and addresses (TR06)."""

    async def register(ctx: HandlerContext[RegisterWebhook], repos: Repositories) -> None:
        """TR06: an integration administrator registers a webhook for a target the
        configuration allows; the id is theirs from then on. The event names no secret
        (TR07)."""
        m = ctx.message
        user_id = _actor_id(ctx)
        domain.require_integration_admin(ctx.roles, "registering a webhook")
        policy.check_url(m.url)
        owner = await repos.subscriptions.webhook_owner(m.webhook_id)
        domain.check_webhook_owner(user_id, m.webhook_id, owner)
        stored = await repos.subscriptions.register_webhook(
            m.webhook_id, m.url, m.secret, m.event_types, ctx.now, user_id
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

    return register


async def remove_webhook(ctx: HandlerContext[RemoveWebhook], repos: Repositories) -> None:
    """TR06: only the owner, an integration administrator, removes a webhook; deliveries to it
    not yet sent are parked by the worker, not sent."""
    webhook_id = ctx.message.webhook_id
    user_id = _actor_id(ctx)
    domain.require_integration_admin(ctx.roles, "removing a webhook")
    owner = await repos.subscriptions.webhook_owner(webhook_id)
    domain.check_webhook_owner(user_id, webhook_id, owner)
    await repos.subscriptions.remove_webhook(webhook_id, ctx.now)
    ctx.emit(WebhookRemoved(webhook_id=webhook_id))


async def replay_parked(ctx: HandlerContext[ReplayParkedDeliveries], repos: Repositories) -> None:
    """NT07: parked deliveries are sent again; TR06: by an integration administrator."""
    domain.require_integration_admin(ctx.roles, "replaying parked deliveries")
    replayed = await repos.deliveries.unpark(ctx.message.delivery_ids, ctx.now)
    ctx.emit(ParkedDeliveriesReplayed(delivery_ids=replayed))


def handlers(policy: domain.WebhookPolicy) -> dict[type, Handler]:
    return {
        SetChannelPreferences: set_channel_preferences,
        RegisterWebhook: register_webhook(policy),
        RemoveWebhook: remove_webhook,
        ReplayParkedDeliveries: replay_parked,
    }
