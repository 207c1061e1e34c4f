"""Notifications' message handlers, by topic: each resolves recipients through the
repositories, lets the domain decide who is told what, and plans the deliveries in the
transaction that consumed the event (`_notify.notify`).

Planning writes one row per recipient and channel (NT07); the in-app inbox rows are delivered by
that write (NotificationSent is emitted with them), e-mail and webhook rows are sent afterwards by
the delivery worker (`services.notifications.worker`).

`build(policy, repositories)` makes a dispatcher (handler unit tests give fake repositories);
`dispatcher_for(policy)` is the service's with webhook registration bound to the configured
targets (TR06); `dispatcher` has no target allowed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from contracts import Topics
from services.notifications import domain, store
from services.notifications.handlers import (
    access_events,
    reminders,
    signoff_events,
    webhooks,
    work_landed,
)
from services.notifications.handlers._notify import Handler, notify
from services.notifications.repository import Repositories
from services.shared import directory
from services.shared.transaction import Dispatcher, HandlerContext, Transaction

__all__ = ["CONSUMES", "build", "dispatcher", "dispatcher_for", "notify"]

CONSUMES = [
    Topics.ALLOCATION_EVENTS,
    Topics.SIGNOFF_EVENTS,
    Topics.ACCESS_EVENTS,
    Topics.NOTIFICATIONS_COMMANDS,
]


def _bound(handler: Handler, repositories: Callable[[Transaction], Repositories]) -> Any:
    async def handle(ctx: HandlerContext[Any]) -> None:
        await handler(ctx, repositories(ctx))

    handle.__name__ = getattr(handler, "__name__", "handle")
    handle.__doc__ = handler.__doc__
    return handle


def build(
    policy: domain.WebhookPolicy,
    repositories: Callable[[Transaction], Repositories] = Repositories.sql,
) -> Dispatcher:
    dispatcher = Dispatcher()

    def add(handlers: Iterable[tuple[type, Handler]]) -> None:
        for message_type, handler in handlers:
            dispatcher.add(message_type.TYPE, _bound(handler, repositories))  # type: ignore[attr-defined]

    add(work_landed.HANDLERS.items())
    add(signoff_events.HANDLERS.items())
    # The directory projection applies access's events first; the notices below then find the
    # position's holder (and a revoked position as it was).
    directory.register(dispatcher, store.directory_t)
    add(access_events.HANDLERS.items())
    add(reminders.HANDLERS.items())
    add(webhooks.handlers(policy).items())
    return dispatcher


def dispatcher_for(policy: domain.WebhookPolicy) -> Dispatcher:
    """The service's handlers with webhook registration bound to the configured targets and
    addresses (TR06)."""
    return build(policy)


# Without a configured policy no webhook target is allowed.
dispatcher = build(domain.WebhookPolicy())
