"""New work and the work a worker takes on: referrals and service requests from outside
(AL01, AC19), steps created (AL02, AL03, AL10), started (AL03), resumed (AL13, AL11) and
service requests completed (AC23)."""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts import Message
from contracts.allocation import (
    CompleteServiceRequest,
    CreateStep,
    ReceiveReferral,
    ReceiveServiceRequest,
    ResumeStep,
    StartStep,
    StepType,
)
from services.allocation import deadlines, domain
from services.allocation.domain import WorkItem
from services.allocation.handlers._steps import (
    Ctx,
    Handler,
    actor_user,
    apply,
    publish,
    work_item,
)
from services.allocation.repository import Repositories
from services.shared.transaction import HandlerContext


async def _intake(
    ctx: Ctx,
    repos: Repositories,
    *,
    person_id: str,
    person_name: str,
    area: str | None,
    step_type: StepType,
    placement: domain.Placement,
    unit_id: str | None,
    note: str,
    received_at: datetime | None,
) -> None:
    """New work from outside (a referral, a service request): the person and the item, staged
    (the item's id derives from the message, so it is new by construction)."""
    start = deadlines.counted_from(received_at, ctx.now)  # DL01: decided before anything is staged
    change = WorkItem.create(
        work_item_id=uuid.uuid5(ctx.envelope.message_id, step_type.value),
        person_id=person_id,
        person_name=person_name,
        step_type=step_type,
        placement=placement,
        due_at=deadlines.due_at_for(step_type, start),
        now=ctx.now,
        actor=ctx.actor,
        note=note,
        unit=unit_id,
    )
    await repos.people.note(person_id, person_name, area, staged=True)
    await repos.items.add(change, by=actor_user(ctx), new_by_construction=True)
    publish(ctx, change.event)


async def receive_referral(ctx: HandlerContext[ReceiveReferral], repos: Repositories) -> None:
    """AL01: the triage step in the Hub Team's incoming work."""
    cmd = ctx.message
    await _intake(
        ctx,
        repos,
        person_id=cmd.person_id,
        person_name=cmd.person_name,
        area=cmd.area,
        step_type=StepType.TRIAGE,
        placement=domain.placement_for_new_step(StepType.TRIAGE, cmd.area),
        unit_id=None,
        note=cmd.reason,
        received_at=cmd.received_at,
    )


async def receive_service_request(
    ctx: HandlerContext[ReceiveServiceRequest], repos: Repositories
) -> None:
    """AC19: agency work enters its unit's hopper."""
    cmd = ctx.message
    unit = await repos.unit(cmd.unit_id)
    await _intake(
        ctx,
        repos,
        person_id=cmd.person_id,
        person_name=cmd.person_name,
        area=None,
        step_type=StepType.SERVICE_REQUEST,
        placement=domain.intake(cmd.unit_id, unit.hopper_id if unit else None),
        unit_id=cmd.unit_id,
        note=cmd.description,
        received_at=cmd.received_at,
    )


async def create_step(ctx: HandlerContext[CreateStep], repos: Repositories) -> None:
    """AL02, AL03: placed by its step type; AL10: by one who may screen and allocate the work
    it becomes (or a Hub Team Senior Officer, who screens new cases)."""
    cmd = ctx.message
    known = await repos.people.get(cmd.person_id)
    placement = domain.placement_for_new_step(
        cmd.step_type, cmd.area or (known.area if known else None)
    )
    domain.authorise_step_creation(
        await repos.directory.acting(ctx.actor),
        domain.unit_of(placement, None),
        await repos.directory.hierarchy(),
    )
    work_item_id = cmd.work_item_id or uuid.uuid5(ctx.envelope.message_id, "step")
    domain.require_new_step(
        cmd.step_type, work_item_id, await repos.items.get(work_item_id, lock=False)
    )
    change = WorkItem.create(
        work_item_id=work_item_id,
        person_id=cmd.person_id,
        person_name=known.name if known else None,
        step_type=cmd.step_type,
        placement=placement,
        due_at=deadlines.due_at_for(cmd.step_type, ctx.now),  # DL01
        now=ctx.now,
        actor=ctx.actor,
    )
    await repos.people.note(cmd.person_id, None, cmd.area)
    if await repos.items.add(change, by=actor_user(ctx), new_by_construction=False):
        publish(ctx, change.event)


async def start_step(ctx: HandlerContext[StartStep], repos: Repositories) -> None:
    """AL03: incoming -> incomplete."""
    cmd = ctx.message
    item = await work_item(repos, cmd.work_item_id, cmd.person_id, "AL03")
    person = await repos.people.get(item.person_id)
    change = item.start(
        await repos.directory.acting(ctx.actor), person.area if person else None, ctx.actor
    )
    await apply(ctx, repos, [change])


async def resume_step(ctx: HandlerContext[ResumeStep], repos: Repositories) -> None:
    """AL13, AL11: a Generic Support Officer resumes Case Monitoring from the person's current
    work, as the person's Involved Worker."""
    cmd = ctx.message
    item = await work_item(repos, cmd.work_item_id, cmd.person_id, "AL13")
    acting = await repos.directory.acting(ctx.actor)
    rels = await repos.people.relationships([item.person_id])
    involved = acting is not None and domain.has_involved_worker(
        rels.get(item.person_id, []), acting.user_id, ctx.now.date()
    )
    await apply(ctx, repos, [item.resume(acting, involved=involved, actor=ctx.actor)])


async def complete_service_request(
    ctx: HandlerContext[CompleteServiceRequest], repos: Repositories
) -> None:
    """AC23 (AC18): completed from My service requests in the position it is assigned to; the
    work item is finished."""
    cmd = ctx.message
    item = await work_item(repos, cmd.work_item_id, cmd.person_id, "AC23")
    await apply(ctx, repos, [item.complete(await repos.directory.acting(ctx.actor), ctx.actor)])


HANDLERS: dict[type[Message], Handler] = {
    ReceiveReferral: receive_referral,
    ReceiveServiceRequest: receive_service_request,
    CreateStep: create_step,
    StartStep: start_step,
    ResumeStep: resume_step,
    CompleteServiceRequest: complete_service_request,
}
