"""Removing secondary access (AC08, AC15) and the release of its work (AC16 saga): the removal
P30 is submitted for the access team; once actioned, the last record's removal asks allocation
to release the position's work, and the position goes when allocation answers."""

from __future__ import annotations

from contracts.access import RequestAccessRemoval
from contracts.allocation import PositionWorkReleasedV2, PositionWorkReleaseFailed
from services.access import domain
from services.access.handlers._steps import Handler, apply, facts, removal_history, subject
from services.access.repository import Repositories
from services.shared.transaction import HandlerContext


async def request_access_removal(
    ctx: HandlerContext[RequestAccessRemoval], repos: Repositories
) -> None:
    """AC03, AC04, AC08, AC15, AC16: the removal P30 (or the retry of a failed release)."""
    cmd = ctx.message
    user = await subject(repos, cmd.user_id)
    grant = await repos.holdings.active_grant(cmd.position_id, cmd.kind)
    change = user.request_removal(
        await facts(ctx, repos),
        cmd.position_id,
        cmd.kind,
        grant,
        await removal_history(repos, grant, cmd.position_id),
        reason=cmd.reason,
        discussion_held=cmd.discussion_held,
        approver_id=cmd.discussed_with,
        approver=await repos.holdings.get(cmd.discussed_with),
        successor_position_id=cmd.successor_position_id,
    )
    await apply(ctx, repos, change)


async def position_work_released(
    ctx: HandlerContext[PositionWorkReleasedV2], repos: Repositories
) -> None:
    """AC16 saga, last step: allocation moved the work; now the access goes, with its P30.
    TR08: a large release is answered in parts (in order, on the user's key); each part's
    items are recorded with the release, and the access goes with the last part only."""
    event = ctx.message
    release = await repos.holdings.release(event.release_id)
    moved = [
        {
            "work_item_id": str(i.work_item_id),
            "person_id": i.person_id,
            "to_owner": {"kind": i.owner_kind, "id": i.owner_id},
        }
        for i in event.items
    ]
    last = event.part >= event.parts
    await apply(ctx, repos, domain.work_released(release, ctx.now, moved, last=last))


async def position_work_release_failed(
    ctx: HandlerContext[PositionWorkReleaseFailed], repos: Repositories
) -> None:
    """AC16: the release failed; the removal stays pending with the reason, the access stays."""
    event = ctx.message
    release = await repos.holdings.release(event.release_id)
    change = domain.work_release_failed(
        release, ctx.now, user_id=event.user_id, position_id=event.position_id, reason=event.reason
    )
    await apply(ctx, repos, change)


HANDLERS: dict[type, Handler] = {
    RequestAccessRemoval: request_access_removal,
    PositionWorkReleasedV2: position_work_released,
    PositionWorkReleaseFailed: position_work_release_failed,
}
