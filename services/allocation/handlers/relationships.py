"""Worker relationships on a person (AL05, AL11): recorded and amended by one who may allocate
the worker's team's work (AL10)."""

from __future__ import annotations

import uuid
from typing import Any

from contracts import Message
from contracts.allocation import (
    AmendWorkerRelationship,
    RecordWorkerRelationship,
    WorkerRelationshipRecorded,
)
from services.allocation import domain
from services.allocation.handlers._steps import Ctx, Handler, actor_user, authorise
from services.allocation.repository import Repositories
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext


async def _recorded(
    ctx: Ctx, repos: Repositories, row: dict[str, Any], *, amended: bool
) -> WorkerRelationshipRecorded:
    names = await repos.people.names([row["person_id"]])
    return WorkerRelationshipRecorded(
        relationship_id=row["relationship_id"],
        person_id=row["person_id"],
        person_name=names.get(row["person_id"]),
        worker_position_id=row["worker_position_id"],
        worker_user_id=row["worker_user_id"],
        relationship_type=row["relationship_type"],
        from_date=row["from_date"],
        end_date=row["end_date"],
        recorded_by_user_id=actor_user(ctx),
        amended=amended,
    )


async def record_worker_relationship(
    ctx: HandlerContext[RecordWorkerRelationship], repos: Repositories
) -> None:
    """AL05, AL11: a Senior Officer records `Involved Worker` before allocating (AL10)."""
    cmd = ctx.message
    worker = domain.relationship_worker(
        await repos.directory.position(cmd.worker_position_id), cmd.worker_position_id
    )
    await authorise(ctx, repos, worker.unit_id, "record worker relationships")
    from_date, end_date = domain.relationship_dates(cmd.from_date, cmd.end_date, ctx.now.date())
    relationship_id = cmd.relationship_id or uuid.uuid5(ctx.envelope.message_id, "rel")
    row = {
        "relationship_id": relationship_id,
        "person_id": cmd.person_id,
        "worker_position_id": worker.position_id,
        "worker_user_id": worker.user_id,
        "relationship_type": cmd.relationship_type,
        "from_date": from_date,
        "end_date": end_date,
        "recorded_by": actor_user(ctx),
        "recorded_at": ctx.now,
    }
    if await repos.people.relationship(relationship_id) is not None:
        raise RuleViolation("AL05", f"relationship {relationship_id} exists; amend it")
    await repos.people.note(cmd.person_id, None, None)
    await repos.people.add_relationship(row)
    ctx.emit(await _recorded(ctx, repos, row, amended=False))


async def amend_worker_relationship(
    ctx: HandlerContext[AmendWorkerRelationship], repos: Repositories
) -> None:
    """AL05: the from-date is amendable; an end-date ends the relationship."""
    cmd = ctx.message
    row = await repos.people.relationship(cmd.relationship_id, cmd.person_id)
    if row is None:
        raise RuleViolation("AL05", f"no relationship {cmd.relationship_id} on {cmd.person_id}")
    worker = await repos.directory.position(row["worker_position_id"])
    await authorise(ctx, repos, worker.unit_id if worker else None, "amend worker relationships")
    from_date, end_date = domain.relationship_dates(
        cmd.from_date or row["from_date"],
        cmd.end_date if cmd.end_date is not None else row["end_date"],
        ctx.now.date(),
    )
    row.update(from_date=from_date, end_date=end_date)
    await repos.people.amend_relationship(cmd.relationship_id, from_date, end_date)
    ctx.emit(await _recorded(ctx, repos, row, amended=True))


HANDLERS: dict[type[Message], Handler] = {
    RecordWorkerRelationship: record_worker_relationship,
    AmendWorkerRelationship: amend_worker_relationship,
}
