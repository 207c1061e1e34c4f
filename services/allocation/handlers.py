"""Allocation's message handlers: decode (done by the plumbing), authorise, decide (domain),
persist (store), emit."""

from __future__ import annotations

import uuid

from contracts import Topics
from contracts.allocation import CreateStep, ReceiveReferral, StepType, WorkItemCreated
from services.allocation import domain, store
from services.shared.consumer import Dispatcher, HandlerContext

dispatcher = Dispatcher()
CONSUMES = [Topics.ALLOCATION_COMMANDS]


async def _create_work_item(
    ctx: HandlerContext[ReceiveReferral] | HandlerContext[CreateStep],
    *,
    work_item_id: uuid.UUID,
    person_id: str,
    person_name: str | None,
    step_type: StepType,
    placement: domain.Placement,
) -> None:
    await ctx.execute(
        store.work_items.insert().values(
            work_item_id=work_item_id,
            person_id=person_id,
            step_type=step_type.value,
            state=placement.state.value,
            owner_kind=placement.owner_kind,
            owner_id=placement.owner_id,
            priority=domain.DEFAULT_PRIORITY,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.execute(
        store.work_history.insert().values(
            work_item_id=work_item_id,
            person_id=person_id,
            change="created",
            actor_user_id=ctx.actor.user_id if ctx.actor else None,
            to_owner=f"{placement.owner_kind}:{placement.owner_id}",
            at=ctx.now,
        )
    )
    ctx.emit(
        WorkItemCreated(
            work_item_id=work_item_id,
            person_id=person_id,
            person_name=person_name,
            step_type=step_type,
            state=placement.state,
            owner_kind=placement.owner_kind,
            owner_id=placement.owner_id,
            priority=domain.DEFAULT_PRIORITY,
            created_at=ctx.now,
        )
    )


@dispatcher.on(ReceiveReferral)
async def receive_referral(ctx: HandlerContext[ReceiveReferral]) -> None:
    """AL01."""
    cmd = ctx.message
    placement = domain.placement_for_new_step(StepType.TRIAGE, cmd.area)
    await store.upsert_person(ctx.conn, cmd.person_id, cmd.person_name, cmd.area)
    await _create_work_item(
        ctx,
        work_item_id=uuid.uuid5(ctx.envelope.message_id, "triage"),
        person_id=cmd.person_id,
        person_name=cmd.person_name,
        step_type=StepType.TRIAGE,
        placement=placement,
    )


@dispatcher.on(CreateStep)
async def create_step(ctx: HandlerContext[CreateStep]) -> None:
    """AL02, AL03."""
    cmd = ctx.message
    placement = domain.placement_for_new_step(cmd.step_type, cmd.area)
    await _create_work_item(
        ctx,
        work_item_id=cmd.work_item_id or uuid.uuid5(ctx.envelope.message_id, "step"),
        person_id=cmd.person_id,
        person_name=None,
        step_type=cmd.step_type,
        placement=placement,
    )
