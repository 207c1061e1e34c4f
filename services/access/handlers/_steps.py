"""The steps every access handler takes: find the user a command is about (locked), gather the
facts a decision needs, and write a decided change then publish its events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.access.domain import Facts, Holdings, RemovalHistory
from services.access.records import Change, Grant
from services.access.repository import Repositories
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext

Ctx = HandlerContext[Any]
# A handler of this service: the message's context and the repositories it works through.
Handler = Callable[[Ctx, Repositories], Awaitable[None]]


def actor_id(ctx: Ctx) -> str:
    return ctx.actor.user_id if ctx.actor else ""


async def subject(repos: Repositories, user_id: str) -> Holdings:
    """The user the command is about, locked for the transaction (AC01/AC02 in-transaction)."""
    user = await repos.holdings.get(user_id, lock=True)
    if user is None:
        raise RuleViolation("AC01", f"unknown user {user_id!r}")
    return user


async def facts(ctx: Ctx, repos: Repositories) -> Facts:
    """Who acts (and what they hold), the hierarchy, the moment and the command's id as the
    seed of what it writes."""
    return await repos.facts(actor_id(ctx), ctx.now, ctx.envelope.message_id)


async def removal_history(
    repos: Repositories, grant: Grant | None, position_id: str
) -> RemovalHistory:
    """AC15: the line manager of whoever set the record up; AC16: the position's latest failed
    release (a removal asked for again retries it)."""
    set_up = await repos.p30s.get(grant.p30_id) if grant else None
    return RemovalHistory(
        set_up_by_line_manager=await repos.holdings.line_manager(
            set_up.requested_by if set_up else None
        ),
        failed=await repos.holdings.failed_release(position_id),
    )


async def apply(ctx: Ctx, repos: Repositories, change: Change | None) -> None:
    """Save the decided change, then emit what it publishes (with it, through the outbox)."""
    if change is None:
        return
    await repos.save(change)
    for event in change.events:
        ctx.emit(event)
