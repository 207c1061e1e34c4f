"""The steps every allocation handler takes: who acts (AL10's acting position), the checks
that need the directory, and saving a decided change then publishing its event (v1 beside
v2 while subscribers move, versions.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from contracts import Event
from services.allocation import domain
from services.allocation.domain import Change, WorkItem
from services.allocation.repository import Repositories
from services.allocation.versions import predecessor
from services.shared.positions import Position
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext

Ctx = HandlerContext[Any]
# A handler of this service: the message's context and the repositories it works through.
Handler = Callable[[Ctx, Repositories], Awaitable[None]]


def actor_user(ctx: Ctx) -> str | None:
    return ctx.actor.user_id if ctx.actor else None


def publish(ctx: Ctx, event: Event) -> None:
    """A v2 event, after its v1 predecessor while subscribers move (docs/subscribing.md)."""
    if (older := predecessor(event)) is not None:
        ctx.emit(older)
    ctx.emit(event)


async def apply(ctx: Ctx, repos: Repositories, changes: Sequence[Change]) -> None:
    """Save decided changes, then publish what they announce (with them, through the outbox)."""
    await repos.items.save(changes, by=actor_user(ctx))
    for change in changes:
        publish(ctx, change.event)


async def work_item(
    repos: Repositories, work_item_id: uuid.UUID, person_id: str | None, rule: str
) -> WorkItem:
    """The item a command is about, locked for the transaction, with its directory facts."""
    item = await repos.items.get(work_item_id)
    if item is None or (person_id is not None and item.person_id != person_id):
        raise RuleViolation(rule, f"no work item {work_item_id} for person {person_id}")
    return item


async def authorise(ctx: Ctx, repos: Repositories, owning_unit: str | None, what: str) -> Position:
    """AL10 / AC19 for work owned by `owning_unit`: the acting position that may do it."""
    acting = await repos.directory.acting(ctx.actor)
    return domain.authorise_allocation(acting, owning_unit, await repos.directory.hierarchy(), what)


async def authorise_on(ctx: Ctx, repos: Repositories, item: WorkItem, what: str) -> Position:
    """AL10 for the item's owning team, or AL14 for the area team of Case Monitoring a Hub Team
    worker started."""
    person = await repos.people.get(item.person_id)
    return domain.authorise_on_work(
        await repos.directory.acting(ctx.actor),
        item,
        item.owning_unit,
        person.area if person else None,
        await repos.directory.hierarchy(),
        what,
    )


async def involved(ctx: Ctx, repos: Repositories, person_id: str, worker: Position) -> bool:
    """AL05: whether `worker` is the person's Involved Worker today (read only when asked)."""
    if worker.role not in domain.RELATIONSHIP_ROLES:
        return False
    rels = await repos.people.relationships([person_id])
    return domain.has_involved_worker(rels.get(person_id, []), worker.user_id, ctx.now.date())
