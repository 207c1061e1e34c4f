"""Standing secondary access (AC06-AC15) through its P30 (AC04): the TL/SM submits it, another
TL/SM approves it, and the access team actions or refuses it (AC20)."""

from __future__ import annotations

from contracts.access import ActionP30, RefuseP30, RequestAbsenceAccess, RequestHierarchicalAccess
from services.access.handlers._steps import Handler, apply, facts, subject
from services.access.repository import Repositories
from services.shared.transaction import HandlerContext


async def request_absence_access(
    ctx: HandlerContext[RequestAbsenceAccess], repos: Repositories
) -> None:
    """AC06-AC10, AC20: the TL/SM submits the P30; the access team actions it (ActionP30)."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    change = user.request_absence_access(
        await facts(ctx, repos),
        cmd.unit_ids,
        discussion_held=cmd.discussion_held,
        approver_id=cmd.discussed_with,
        approver=await repos.holdings.get(cmd.discussed_with),
        reason=cmd.reason,
    )
    await apply(ctx, repos, change)


async def request_hierarchical_access(
    ctx: HandlerContext[RequestHierarchicalAccess], repos: Repositories
) -> None:
    """AC12-AC14, AC20: the lower segment's TL/SM submits the P30, approved by the higher
    segment's TL/SM it was agreed with; the access team actions it."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    change = user.request_hierarchical_access(
        await facts(ctx, repos),
        cmd.unit_ids,
        agreed_with_id=cmd.agreed_with,
        agreed_with=await repos.holdings.get(cmd.agreed_with),
        reason=cmd.reason,
    )
    await apply(ctx, repos, change)


async def action_p30(ctx: HandlerContext[ActionP30], repos: Repositories) -> None:
    """AC20: the grant or removal the P30 asks for happens now, by the access team; a removal
    goes through the release of work (AC16) when no other record backs the position."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    record = await repos.p30s.get(cmd.p30_id, lock=True)
    grant = await repos.holdings.grant(record.grant_id if record else None)
    change = user.action_p30(await facts(ctx, repos), cmd.p30_id, record, grant=grant)
    await apply(ctx, repos, change)


async def refuse_p30(ctx: HandlerContext[RefuseP30], repos: Repositories) -> None:
    """AC20: refused by the access team with its reason; nothing is granted or removed."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    record = await repos.p30s.get(cmd.p30_id, lock=True)
    change = user.refuse_p30(await facts(ctx, repos), cmd.p30_id, record, cmd.reason)
    await apply(ctx, repos, change)


HANDLERS: dict[type, Handler] = {
    RequestAbsenceAccess: request_absence_access,
    RequestHierarchicalAccess: request_hierarchical_access,
    ActionP30: action_p30,
    RefuseP30: refuse_p30,
}
