"""What sign-off's outcomes do to the work (AL04, AL11, AL13, AL15, SO06, SO07, SO09, SO10):
requests shown in a team's incoming requests, a returned step back with its worker, a finished
step locked and its next actions sent as new work."""

from __future__ import annotations

import uuid
from typing import Any

from contracts import Message
from contracts.allocation import IncomingRequestRecorded, InvolvedWorkerPrompted
from contracts.signoff import RequestCompleted, RequestReturned, RequestSent, StepFinished
from services.allocation import deadlines, domain
from services.allocation.domain import WorkItem
from services.allocation.handlers._steps import Ctx, Handler, actor_user, apply, publish
from services.allocation.repository import Repositories
from services.shared import logs
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext

log = logs.get(__name__)


async def _request_recorded(ctx: Ctx, repos: Repositories, row: dict[str, Any]) -> None:
    names = await repos.people.names([row["person_id"]])
    ctx.emit(
        IncomingRequestRecorded(
            request_id=row["request_id"],
            step_id=row["step_id"],
            person_id=row["person_id"],
            person_name=names.get(row["person_id"]),
            title=row["title"],
            team=row["team"],
            state=row["state"],
        )
    )


async def request_sent(ctx: HandlerContext[RequestSent], repos: Repositories) -> None:
    """AL04: the request shows in the team's incoming requests."""
    m = ctx.message
    row = {
        "request_id": m.request_id,
        "step_id": m.step_id,
        "person_id": m.person_id,
        "title": m.title,
        "team": m.team,
        "state": "outstanding",
        "sent_by_position_id": m.sent_by_position_id,
        "sent_at": ctx.now,
        "updated_at": ctx.now,
    }
    if await repos.people.add_request(row):
        await _request_recorded(ctx, repos, row)


async def _request_state(ctx: Ctx, repos: Repositories, request_id: uuid.UUID, state: str) -> None:
    row = await repos.people.request_state(request_id, state, ctx.now)
    if row is not None:
        await _request_recorded(ctx, repos, row)


async def request_completed(ctx: HandlerContext[RequestCompleted], repos: Repositories) -> None:
    """AL04: the request leaves the team's outstanding incoming requests."""
    await _request_state(ctx, repos, ctx.message.request_id, "completed")


async def request_returned(ctx: HandlerContext[RequestReturned], repos: Repositories) -> None:
    """SO07: the step is exited, not finished, and goes back to the incomplete work of the
    worker who completed it (AC16: never to a removed position)."""
    m = ctx.message
    await _request_state(ctx, repos, m.request_id, "returned")
    item = await repos.items.get(m.step_id)
    if item is None:
        return
    back_to = await repos.directory.position(m.return_to_position_id)
    change = item.return_to(back_to, note=m.note, request_id=m.request_id, actor=ctx.actor)
    if change is not None:
        await apply(ctx, repos, [change])


async def step_finished(ctx: HandlerContext[StepFinished], repos: Repositories) -> None:
    """SO09: the step is locked and each next action becomes new incoming work for its
    assignee (SO06); AL13: triage's Trusted Assessment goes to the area's team (AL02). AL15: the
    form's content is kept for the person's Documents. SO10/AL11: a transfer to a Generic
    Support Officer prompts the Senior Officer to record them as Involved Worker. Ids derive
    from the step and the action, so a replay creates nothing."""
    m = ctx.message
    item = await repos.items.get(m.step_id)
    finished = item.finish(m.finished_by_position_id, ctx.actor) if item else None
    if finished is not None:
        await apply(ctx, repos, [finished])
        await repos.items.keep_document(
            {
                "work_item_id": m.step_id,
                "person_id": m.person_id,
                "step_type": m.step_type,
                "sections": [s.model_dump(mode="json") for s in m.sections],
                "finished_by_position_id": m.finished_by_position_id,
            }
        )
    await repos.people.note(m.person_id, None, None)
    person = await repos.people.get(m.person_id)
    finisher = await repos.directory.position(m.finished_by_position_id)
    for action in m.next_actions:
        step_type = domain.next_action_step(action.action_type)
        if step_type is None:
            log.warning(
                "next action is no workflow step; nothing to allocate", action=action.action_type
            )
            continue
        worker = action.assignee_kind == "worker"
        assignee = await repos.directory.position(action.assignee_id) if worker else None
        unit = await repos.unit(assignee.unit_id if assignee else action.assignee_id)
        area = person.area if person else None
        try:
            placement = domain.placement_for_next_action(
                step_type, action.assignee_kind, area
            ) or domain.next_action_placement(
                action.assignee_kind, action.assignee_id, assignee, unit.hopper_id if unit else None
            )
        except RuleViolation as violation:
            log.warning("next action not allocated", reason=violation.reason)
            continue
        change = WorkItem.create(
            work_item_id=uuid.uuid5(m.step_id, f"next-action:{action.action_id}"),
            person_id=m.person_id,
            person_name=person.name if person else None,
            step_type=step_type,
            placement=placement,
            due_at=deadlines.due_at_for(step_type, ctx.now),  # DL01
            now=ctx.now,
            actor=ctx.actor,
            priority=action.priority,
            note=action.note,
            holder=assignee,
            unit=unit.unit_id if unit else None,
        )
        if not await repos.items.add(change, by=actor_user(ctx), new_by_construction=False):
            continue
        publish(ctx, change.event)
        rels = await repos.people.relationships([m.person_id])
        officer = domain.involved_worker_prompt(
            action.action_type, assignee, rels.get(m.person_id, []), ctx.now.date()
        )
        if officer is not None:
            ctx.emit(
                InvolvedWorkerPrompted(
                    person_id=m.person_id,
                    person_name=person.name if person else None,
                    work_item_id=change.after.work_item_id,
                    worker_position_id=officer.position_id,
                    worker_user_id=officer.user_id,
                    senior_officer_position_id=m.finished_by_position_id,
                    senior_officer_user_id=finisher.user_id if finisher else None,
                )
            )


HANDLERS: dict[type[Message], Handler] = {
    RequestSent: request_sent,
    RequestCompleted: request_completed,
    RequestReturned: request_returned,
    StepFinished: step_finished,
}
