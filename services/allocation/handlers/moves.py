"""Moving work nobody chose an assignee for: an absent caseworker's cases (AC07), a case back to
its segment hopper (AC19), and the work of a position being removed (AC16, allocation's half of
the removal saga, and whatever a revoked position still holds)."""

from __future__ import annotations

from collections.abc import Sequence

from contracts import Event, Message
from contracts.access import PositionReleaseRequested, PositionRevoked
from contracts.allocation import (
    BULK_EVENT_ITEMS,
    AbsentCaseworkerWorkMovedV2,
    MoveAbsentCaseworkerWork,
    Owner,
    PositionWorkReleasedV2,
    PositionWorkReleaseFailed,
    SendToSegmentHopper,
)
from services.allocation import domain, versions
from services.allocation.domain import Change
from services.allocation.handlers._steps import Ctx, Handler, apply, authorise, work_item
from services.allocation.repository import Repositories
from services.shared import logs
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext

log = logs.get(__name__)


async def move_absent_caseworker_work(
    ctx: HandlerContext[MoveAbsentCaseworkerWork], repos: Repositories
) -> None:
    """AC07: to another caseworker of the team, or to the team hopper."""
    cmd = ctx.message
    absent = await repos.directory.position(cmd.from_position_id)
    target = await repos.directory.position(cmd.to_position_id)
    if cmd.to_position_id and target is None:
        raise RuleViolation("AC07", f"no caseworker position {cmd.to_position_id}")
    team = await repos.unit(absent.unit_id) if absent else None
    to = domain.absent_move_target(
        await repos.directory.acting(ctx.actor), absent, target, team.hopper_id if team else None
    )
    unit = team.unit_id if team else None
    changes = [
        item.move(to, "AC07", actor=ctx.actor, holder=target, unit=unit, note=cmd.note)
        for item in await repos.items.held_by(cmd.from_position_id)
    ]
    chunks = _chunks(changes)
    parts = [
        AbsentCaseworkerWorkMovedV2(
            from_position_id=cmd.from_position_id,
            to_owner=to.owner,
            items=[c.after.snapshot(ctx.actor) for c in chunk],
            from_owners=_from_owners(chunk),
            part=n,
            parts=len(chunks),
        )
        for n, chunk in enumerate(chunks, start=1)
    ]
    older = versions.predecessor_of(parts)  # TR08: refused before anything moves
    await apply(ctx, repos, changes)
    _publish_parts(ctx, older, parts)


def _chunks(changes: Sequence[Change]) -> list[Sequence[Change]]:
    """TR08: a summary of many items in parts of BULK_EVENT_ITEMS (one part when none)."""
    return [
        changes[start : start + BULK_EVENT_ITEMS]
        for start in range(0, max(len(changes), 1), BULK_EVENT_ITEMS)
    ]


def _from_owners(chunk: Sequence[Change]) -> list[Owner]:
    """Where each item of the part was, in the order of its items (a move always has one)."""
    return [c.before.owner for c in chunk if c.before is not None]


def _publish_parts(ctx: Ctx, older: Event | None, parts: Sequence[Event]) -> None:
    """The outcome's one v1 event (versions.py), then its v2 parts in order, on one key."""
    if older is not None:
        ctx.emit(older)
    for part in parts:
        ctx.emit(part)


async def send_to_segment_hopper(
    ctx: HandlerContext[SendToSegmentHopper], repos: Repositories
) -> None:
    """AC19 (with AL10): a case for another team goes back to the segment hopper first."""
    cmd = ctx.message
    item = await work_item(repos, cmd.work_item_id, cmd.person_id, "AC19")
    await authorise(ctx, repos, item.owning_unit, "move")
    team = await repos.unit(item.owning_unit)
    segment = await repos.unit(team.parent_id if team else None)
    parent_id = team.parent_id if team else None
    to = domain.segment_hopper(item, segment.hopper_id if segment else None, parent_id)
    await apply(ctx, repos, [item.move(to, "AC19", actor=ctx.actor, unit=parent_id, note=cmd.note)])


async def _release(
    ctx: Ctx, repos: Repositories, position_id: str, successor_id: str | None
) -> list[Change]:
    """AC16: everything held in the position moved (nothing when nothing is held)."""
    items = await repos.items.held_by(position_id)
    if not items:
        return []
    held_by = await repos.directory.position(position_id)
    unit = await repos.unit(held_by.unit_id) if held_by else None
    successor = await repos.directory.position(successor_id)
    to = domain.release_target(held_by, successor, successor_id, unit.hopper_id if unit else None)
    unit_id = unit.unit_id if unit else None
    return [i.move(to, "AC16", actor=ctx.actor, holder=successor, unit=unit_id) for i in items]


async def position_release_requested(
    ctx: HandlerContext[PositionReleaseRequested], repos: Repositories
) -> None:
    """AC16, allocation's half of the saga: move the work in one transaction and confirm, or
    say why not."""
    m = ctx.message
    try:
        changes = await _release(ctx, repos, m.position_id, m.successor_position_id)
        chunks = _chunks(changes)
        parts = [
            PositionWorkReleasedV2(
                release_id=m.release_id,
                user_id=m.user_id,
                position_id=m.position_id,
                items=[c.after.snapshot(ctx.actor) for c in chunk],
                from_owners=_from_owners(chunk),
                part=n,
                parts=len(chunks),
            )
            for n, chunk in enumerate(chunks, start=1)
        ]
        # TR08: a v1 answer that could not be published fails the release with the reason
        # (nothing moved) rather than leave the saga waiting.
        older = versions.predecessor_of(parts)
    except RuleViolation as violation:
        ctx.emit(
            PositionWorkReleaseFailed(
                release_id=m.release_id,
                user_id=m.user_id,
                position_id=m.position_id,
                reason=f"{violation.rule}: {violation.reason}",
            )
        )
        return
    await apply(ctx, repos, changes)
    _publish_parts(ctx, older, parts)


async def position_revoked(ctx: HandlerContext[PositionRevoked], repos: Repositories) -> None:
    """AC16: a removed position never keeps work. The saga moves it before the revocation; if
    anything is still held when the revocation arrives, it goes back to the hopper now (the
    directory projection's handler, registered first, has applied it already)."""
    try:
        changes = await _release(ctx, repos, ctx.message.position_id, None)
    except RuleViolation as violation:
        log.warning("revoked position still holds work", reason=violation.reason)
        return
    await apply(ctx, repos, changes)


HANDLERS: dict[type[Message], Handler] = {
    MoveAbsentCaseworkerWork: move_absent_caseworker_work,
    SendToSegmentHopper: send_to_segment_hopper,
    PositionReleaseRequested: position_release_requested,
    PositionRevoked: position_revoked,
}
