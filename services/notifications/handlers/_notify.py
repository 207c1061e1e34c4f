"""The one way a notice is planned (NT07), for every handler, the reminder scan and the
delivery worker: who is told is resolved through the repositories, the deliveries are planned
by the domain, written once per recipient and channel, and what the planning publishes is
emitted on the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from services.notifications import domain
from services.notifications.repository import Repositories
from services.shared.transaction import HandlerContext, Transaction

Ctx = HandlerContext[Any]
# A handler of this service: the message's context and the repositories it works through.
Handler = Callable[[Ctx, Repositories], Awaitable[None]]


async def notify(
    tx: Transaction,
    repos: Repositories,
    notice: domain.Notice,
    user_ids: Sequence[str],
    *,
    source_id: uuid.UUID,
    correlation_id: uuid.UUID | None,
) -> list[domain.Delivery]:
    """Plans a notice for its recipients on their channels and the webhooks that want it (NT07:
    once per recipient and channel, whatever the number of times this runs for one source).
    A recipient given as `domain.waiting_for(position)` waits for the position's holder."""
    waiting = [u for u in user_ids if u.startswith(domain.WAITING_PREFIX)]
    users = [u for u in user_ids if not u.startswith(domain.WAITING_PREFIX)]
    recipients, hooks = await repos.deliveries.audience(users, notice.kind)
    planned = domain.plan_deliveries(source_id, notice, recipients, hooks, waiting)
    new = await repos.deliveries.add(
        planned, source_id=source_id, correlation_id=correlation_id, now=tx.now
    )
    for event in domain.delivery_events(new):
        tx.emit(event)
    return new


async def tell(
    ctx: Ctx, repos: Repositories, notice: domain.Notice, user_ids: Sequence[str]
) -> None:
    """A notice caused by the consumed event (its id is the notice's source)."""
    await notify(
        ctx,
        repos,
        notice,
        user_ids,
        source_id=ctx.envelope.message_id,
        correlation_id=ctx.envelope.correlation_id,
    )


async def worker_user(
    repos: Repositories, position_id: str | None, user_id: str | None = None
) -> list[str]:
    """The user holding a position; if the directory does not know it yet, the notice waits
    for the holder (NT07)."""
    if not position_id and not user_id:
        return []
    user = user_id or await repos.people.user_of_position(position_id)
    return [user or domain.waiting_for(position_id or "")]
