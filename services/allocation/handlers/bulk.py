"""Bulk assign (AL08): the same "pass to worker" as one assignment (the work item's `assign`),
for every selected item, all or none, with one note written against every item; the preview
tells each item's outcome and changes nothing."""

from __future__ import annotations

import uuid

from contracts import Message
from contracts.allocation import (
    BULK_EVENT_ITEMS,
    BulkAssign,
    BulkAssigned,
    BulkAssignPreviewed,
    BulkItemOutcome,
    PreviewBulkAssign,
)
from services.allocation import domain
from services.allocation.domain import Change, WorkItem
from services.allocation.handlers._steps import Ctx, Handler, actor_user, authorise
from services.allocation.repository import Repositories
from services.shared.positions import Position
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext


async def _decide(
    ctx: Ctx, repos: Repositories, cmd: PreviewBulkAssign
) -> tuple[Position, list[Change], list[BulkItemOutcome]]:
    """Each selected item's assignment or the rule refusing it, in the order selected."""
    target = domain.require_active_target(
        await repos.directory.position(cmd.to_position_id), cmd.to_position_id
    )
    ids = list(dict.fromkeys(cmd.work_item_ids))
    found = await repos.items.get_many(ids)
    items = [found[i] for i in ids if i in found]
    # AL10 / AC19 once per distinct owning unit: its answer (the acting position, or refusal).
    authorised: dict[str | None, Position | RuleViolation] = {}
    for item in items:
        if item.owning_unit not in authorised:
            try:
                authorised[item.owning_unit] = await authorise(
                    ctx, repos, item.owning_unit, "allocate"
                )
            except RuleViolation as violation:
                authorised[item.owning_unit] = violation
    rels = await repos.people.relationships({i.person_id for i in items})
    today = ctx.now.date()
    changes: list[Change] = []
    errors: dict[uuid.UUID, Exception | None] = {}
    for item in items:
        try:
            by = authorised[item.owning_unit]
            if isinstance(by, RuleViolation):
                raise by
            changes.append(
                item.assign(
                    target,
                    by=by,
                    actor=ctx.actor,
                    involved=domain.has_involved_worker(
                        rels.get(item.person_id, []), target.user_id, today
                    ),
                    note=cmd.note,
                    bulk=True,
                )
            )
            errors[item.work_item_id] = None
        except RuleViolation as violation:
            errors[item.work_item_id] = violation
    entries: list[WorkItem | uuid.UUID] = [found.get(i, i) for i in ids]
    return target, changes, domain.bulk_outcomes(entries, errors)


def _parts(count: int) -> list[slice]:
    """TR08: a bulk outcome in parts of BULK_EVENT_ITEMS, each fitting the record limit."""
    return [
        slice(start, start + BULK_EVENT_ITEMS)
        for start in range(0, max(count, 1), BULK_EVENT_ITEMS)
    ]


async def preview_bulk_assign(ctx: HandlerContext[PreviewBulkAssign], repos: Repositories) -> None:
    """AL08: each item's outcome; nothing changes."""
    cmd = ctx.message
    _, _, outcomes = await _decide(ctx, repos, cmd)
    parts = _parts(len(outcomes))
    for part, chunk in enumerate(parts, start=1):
        ctx.emit(
            BulkAssignPreviewed(
                to_position_id=cmd.to_position_id,
                note=cmd.note,
                outcomes=outcomes[chunk],
                would_apply=all(o.ok for o in outcomes),
                part=part,
                parts=len(parts),
            )
        )


async def bulk_assign(ctx: HandlerContext[BulkAssign], repos: Repositories) -> None:
    """AL08: all or nothing, one note against every item, one transaction."""
    cmd = ctx.message
    target, changes, outcomes = await _decide(ctx, repos, cmd)
    refusal = domain.bulk_refusal(outcomes)
    if refusal is not None:
        raise refusal
    await repos.items.save(changes, by=actor_user(ctx))
    parts = _parts(len(changes))
    for part, chunk in enumerate(parts, start=1):
        ctx.emit(
            BulkAssigned(
                to_position_id=target.position_id,
                to_user_id=target.user_id,
                note=cmd.note,
                items=[c.after.snapshot(ctx.actor) for c in changes[chunk]],
                from_owners=[c.before.owner for c in changes[chunk] if c.before is not None],
                part=part,
                parts=len(parts),
            )
        )


HANDLERS: dict[type[Message], Handler] = {
    PreviewBulkAssign: preview_bulk_assign,
    BulkAssign: bulk_assign,
}
