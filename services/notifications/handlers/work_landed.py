"""allocation.events: work landing in a worker's incoming work (NT01) and deadlines (DL02).

Work lands in a worker's incoming work when allocation says so: an item created for a worker
(a next action sent to them, SO09), assigned or reassigned to them (AL06, AL09), bulk assigned
(AL08), or moved to them (AC07, AC16). Read through allocation's one work-item event shape
(`items: list[WorkItemSnapshot]`)."""

from __future__ import annotations

from contracts.allocation import (
    AbsentCaseworkerWorkMovedV2,
    BulkAssigned,
    WorkItemAssignedV2,
    WorkItemCreatedV2,
    WorkItemDueV2,
    WorkItemMovedV2,
    WorkItemOverdueV2,
    WorkItemSnapshot,
)
from services.notifications import domain
from services.notifications.handlers._notify import Ctx, Handler, notify, tell, worker_user
from services.notifications.repository import Repositories
from services.shared.transaction import HandlerContext


async def _item_landed(
    ctx: Ctx, repos: Repositories, item: WorkItemSnapshot, how: str, note: str = ""
) -> None:
    """NT01: an item now owned by a worker position is new work for its holder."""
    if item.owner_kind != "worker":
        return
    notice = domain.work_landed(
        work_item_id=item.work_item_id,
        person_id=item.person_id,
        what=item.step_type.value,
        how=how,
        note=note,
    )
    await tell(ctx, repos, notice, await worker_user(repos, item.owner_id, item.owner_user_id))


async def work_item_created(ctx: HandlerContext[WorkItemCreatedV2], repos: Repositories) -> None:
    """NT01: a new item in a worker's incoming work (a next action sent to them)."""
    m = ctx.message
    await _item_landed(ctx, repos, m.items[0], "next action sent", m.note)


async def work_item_assigned(ctx: HandlerContext[WorkItemAssignedV2], repos: Repositories) -> None:
    """NT01: assignment and reassignment."""
    m = ctx.message
    how = "reassignment" if m.reassigned else "assignment"
    await _item_landed(ctx, repos, m.items[0], how, m.note)


async def work_item_moved(ctx: HandlerContext[WorkItemMovedV2], repos: Repositories) -> None:
    """NT01: work moved to a worker (an absent caseworker's cases, released work)."""
    m = ctx.message
    await _item_landed(ctx, repos, m.items[0], f"moved ({m.rule})", m.note)


async def absent_work_moved(
    ctx: HandlerContext[AbsentCaseworkerWorkMovedV2], repos: Repositories
) -> None:
    """NT01: an absent caseworker's cases moved to another caseworker (AC07). A large move
    comes in parts (TR08): one notice per part, naming that part's cases (each part is its own
    event, so each notice is still sent once per recipient, NT07)."""
    m = ctx.message
    if m.to_owner.kind != "worker" or not m.items:
        return
    how = "moved from an absent caseworker"
    if m.parts > 1:
        how += f", part {m.part} of {m.parts}"
    notice = domain.bulk_landed(
        items=[(i.work_item_id, i.person_id, i.step_type.value) for i in m.items],
        how=how,
        note="",
    )
    users = await worker_user(repos, m.to_owner.id, m.items[0].owner_user_id)
    await tell(ctx, repos, notice, users)


async def bulk_assigned(ctx: HandlerContext[BulkAssigned], repos: Repositories) -> None:
    """NT01: bulk assignment (AL08): one notice naming every item."""
    m = ctx.message
    notice = domain.bulk_landed(
        items=[(i.work_item_id, i.person_id, i.step_type.value) for i in m.items],
        how="bulk assignment",
        note=m.note,
    )
    await tell(ctx, repos, notice, await worker_user(repos, m.to_position_id, m.to_user_id))


async def _deadline(
    ctx: Ctx, repos: Repositories, item: WorkItemSnapshot, *, overdue: bool
) -> None:
    """DL02: the assignee and their Senior Officer or team leader (of the team or segment that
    owns the work) are told, once per item and flag."""
    assignee = (
        await worker_user(repos, item.owner_id, item.owner_user_id)
        if item.owner_kind == "worker"
        else []
    )
    leaders = (
        await repos.people.members_with_roles([item.owner_unit_id], domain.DEADLINE_LEADER_ROLES)
        if item.owner_unit_id
        else []
    )
    notice = domain.deadline_notice(
        overdue=overdue,
        work_item_id=item.work_item_id,
        person_id=item.person_id,
        what=item.step_type.value,
        due_at=ctx.message.due_at,
    )
    await notify(
        ctx,
        repos,
        notice,
        domain.deadline_recipients(assignee, leaders),
        source_id=domain.deadline_source(item.work_item_id, notice.kind),
        correlation_id=ctx.envelope.correlation_id,
    )


async def work_item_due(ctx: HandlerContext[WorkItemDueV2], repos: Repositories) -> None:
    """DL02: the work falls due today."""
    await _deadline(ctx, repos, ctx.message.items[0], overdue=False)


async def work_item_overdue(ctx: HandlerContext[WorkItemOverdueV2], repos: Repositories) -> None:
    """DL02: the work is overdue."""
    await _deadline(ctx, repos, ctx.message.items[0], overdue=True)


HANDLERS: dict[type, Handler] = {
    WorkItemCreatedV2: work_item_created,
    WorkItemAssignedV2: work_item_assigned,
    WorkItemMovedV2: work_item_moved,
    AbsentCaseworkerWorkMovedV2: absent_work_moved,
    BulkAssigned: bulk_assigned,
    WorkItemDueV2: work_item_due,
    WorkItemOverdueV2: work_item_overdue,
}
