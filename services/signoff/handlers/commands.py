"""Sign-off's message handlers: decode (done by the plumbing), authorise, decide (domain),
persist (store), emit."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.signoff import (
    MANAGEMENT_TEAM,
    AddNextActions,
    ChangeNextAction,
    CompleteRequest,
    FinishStep,
    NextActionChanged,
    NextActionInput,
    NextActionRemoved,
    NextActionsAdded,
    RemoveNextAction,
    RequestCompleted,
    RequestReturned,
    RequestSent,
    ReturnRequest,
    SaveStep,
    SendRequest,
    StepFinished,
    StepSaved,
)
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext
from services.signoff import domain, store
from services.signoff.handlers.registry import dispatcher

# Refusal code for a command about a step sign-off does not know (not a business rule).
UNKNOWN_STEP = "unknown-step"

# --- Commands --------------------------------------------------------------------------------


async def _step_and_worker(ctx: HandlerContext[Any]) -> tuple[domain.Step, domain.Worker | None]:
    """The commanded step (locked for the transaction) and the acting position."""
    cmd = ctx.message
    step = await store.load_step(ctx.conn, cmd.step_id)
    if step is None or step.person_id != cmd.person_id:
        raise RuleViolation(
            UNKNOWN_STEP, f"no step {cmd.step_id} for person {cmd.person_id} under sign-off"
        )
    return step, await store.worker(ctx.conn, ctx.actor)


@dispatcher.on(SendRequest)
async def send_request(ctx: HandlerContext[SendRequest]) -> None:
    """SO01, SO02."""
    step, worker = await _step_and_worker(ctx)
    title = domain.send_request(step, worker)
    assert worker is not None  # send_request refuses an unknown position
    request_id = uuid.uuid5(ctx.envelope.message_id, "request")
    await ctx.execute(
        store.requests.insert().values(
            request_id=request_id,
            step_id=step.step_id,
            person_id=step.person_id,
            title=title,
            team=MANAGEMENT_TEAM,
            state=domain.RequestState.OUTSTANDING.value,
            sent_by_position_id=worker.position_id,
            sent_at=ctx.now,
        )
    )
    ctx.emit(
        RequestSent(
            request_id=request_id,
            step_id=step.step_id,
            person_id=step.person_id,
            title=title,
            team=MANAGEMENT_TEAM,
            sent_by_position_id=worker.position_id,
        )
    )


@dispatcher.on(SaveStep)
async def save_step(ctx: HandlerContext[SaveStep]) -> None:
    """SO09: saving keeps the step open."""
    step, worker = await _step_and_worker(ctx)
    answers = domain.save(step, worker, ctx.message.answers)
    s = store.steps
    await ctx.execute(
        s.update().where(s.c.step_id == step.step_id).values(answers=answers, updated_at=ctx.now)
    )
    ctx.emit(
        StepSaved(
            step_id=step.step_id,
            person_id=step.person_id,
            answers=answers,
            incomplete_mandatory=domain.incomplete_mandatory(step.step_type, answers),
            prompted_actions=domain.prompted_actions(step.step_type, answers),
        )
    )


async def _assignee_roles(
    ctx: HandlerContext[Any], actions: list[NextActionInput]
) -> dict[str, str]:
    """The active worker positions the actions name, with their roles (SO04, SO10)."""
    roles = {}
    for a in actions:
        if a.assignee_kind != "worker":
            continue
        position = await store.directory.position(ctx.conn, a.assignee_id)
        if position is not None:
            roles[a.assignee_id] = position.role
    return roles


@dispatcher.on(AddNextActions)
async def add_next_actions(ctx: HandlerContext[AddNextActions]) -> None:
    """SO03, SO04."""
    step, worker = await _step_and_worker(ctx)
    actions = ctx.message.actions
    ids = [uuid.uuid5(ctx.envelope.message_id, f"action-{i}") for i in range(len(actions))]
    known_workers = await _assignee_roles(ctx, actions)
    added = domain.add_next_actions(step, worker, actions, ids, known_workers)
    await ctx.execute(
        store.next_actions.insert(),
        [
            {
                **action.model_dump(),
                "step_id": step.step_id,
                "added_by_position_id": worker.position_id if worker else None,
                "added_at": ctx.now,
            }
            for action in added
        ],
    )
    ctx.emit(NextActionsAdded(step_id=step.step_id, person_id=step.person_id, next_actions=added))


@dispatcher.on(ChangeNextAction)
async def change_next_action(ctx: HandlerContext[ChangeNextAction]) -> None:
    """SO10: change a next action before the step is finished."""
    step, worker = await _step_and_worker(ctx)
    cmd = ctx.message
    changed = domain.change_next_action(
        step, worker, cmd.action_id, cmd.action, await _assignee_roles(ctx, [cmd.action])
    )
    a = store.next_actions
    await ctx.execute(
        a.update()
        .where(a.c.action_id == cmd.action_id, a.c.step_id == step.step_id)
        .values(**changed.model_dump(exclude={"action_id"}))
    )
    ctx.emit(NextActionChanged(step_id=step.step_id, person_id=step.person_id, next_action=changed))


@dispatcher.on(RemoveNextAction)
async def remove_next_action(ctx: HandlerContext[RemoveNextAction]) -> None:
    """SO10: remove a next action before the step is finished; it will not be sent."""
    step, worker = await _step_and_worker(ctx)
    removed = domain.remove_next_action(step, worker, ctx.message.action_id)
    a = store.next_actions
    await ctx.execute(
        a.delete().where(a.c.action_id == removed.action_id, a.c.step_id == step.step_id)
    )
    ctx.emit(
        NextActionRemoved(
            step_id=step.step_id, person_id=step.person_id, action_id=removed.action_id
        )
    )


async def _resolve_request(
    ctx: HandlerContext[CompleteRequest] | HandlerContext[ReturnRequest],
    state: domain.RequestState,
    worker: domain.Worker | None,
    note: str | None = None,
) -> None:
    r = store.requests
    await ctx.execute(
        r.update()
        .where(r.c.request_id == ctx.message.request_id)
        .values(
            state=state.value,
            resolved_by_position_id=worker.position_id if worker else None,
            resolved_at=ctx.now,
            note=note,
        )
    )


@dispatcher.on(CompleteRequest)
async def complete_request(ctx: HandlerContext[CompleteRequest]) -> None:
    """SO07: accept."""
    step, worker = await _step_and_worker(ctx)
    request = domain.complete_request(step, worker, ctx.message.request_id)
    await _resolve_request(ctx, domain.RequestState.COMPLETED, worker)
    ctx.emit(
        RequestCompleted(
            request_id=request.request_id, step_id=step.step_id, person_id=step.person_id
        )
    )


@dispatcher.on(ReturnRequest)
async def return_request(ctx: HandlerContext[ReturnRequest]) -> None:
    """SO07: reject with a note; the step exits unfinished, back to the worker who completed
    it (allocation moves it on `request_returned`)."""
    step, worker = await _step_and_worker(ctx)
    cmd = ctx.message
    return_to = domain.return_request(step, worker, cmd.request_id, cmd.note)
    await _resolve_request(ctx, domain.RequestState.RETURNED, worker, note=cmd.note)
    ctx.emit(
        RequestReturned(
            request_id=cmd.request_id,
            step_id=step.step_id,
            person_id=step.person_id,
            note=cmd.note,
            return_to_position_id=return_to,
        )
    )


@dispatcher.on(FinishStep)
async def finish_step(ctx: HandlerContext[FinishStep]) -> None:
    """SO05, SO08, SO09, AL13: lock the step and send its next actions (allocation turns each
    into new work, SO06) with the form's content for the person's Documents (AL15). A second
    finish is refused by the lock, so StepFinished is emitted once."""
    step, worker = await _step_and_worker(ctx)
    actions = domain.finish(step, worker)
    assert worker is not None  # finish refuses an unknown position
    s = store.steps
    await ctx.execute(
        s.update()
        .where(s.c.step_id == step.step_id)
        .values(
            finished=True,
            finished_by_position_id=worker.position_id,
            finished_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    ctx.emit(
        StepFinished(
            step_id=step.step_id,
            person_id=step.person_id,
            step_type=step.step_type.value,
            finished_by_position_id=worker.position_id,
            next_actions=actions,
            sections=domain.document(step.step_type, step.answers),
        )
    )
