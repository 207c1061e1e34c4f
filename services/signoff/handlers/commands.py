"""Sign-off's commands: load the step (with the acting position), decide (the `Step`'s method),
save the change, emit its event. The plumbing has decoded the command and verified its actor."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from contracts.signoff import (
    AddNextActions,
    ChangeNextAction,
    CompleteRequest,
    FinishStep,
    RemoveNextAction,
    ReturnRequest,
    SaveStep,
    SendRequest,
)
from services.shared.positions import Position
from services.shared.transaction import Dispatcher, HandlerContext, Transaction
from services.signoff.domain import Change, Step, commanded
from services.signoff.repository import SqlSteps, StepRepository

Steps = Callable[[Transaction], StepRepository]


def register(dispatcher: Dispatcher, steps: Steps = SqlSteps) -> None:
    """Adds the command handlers to `dispatcher`, each with a repository from `steps` for its
    transaction (a fake in the handlers' unit tests)."""

    async def load(ctx: HandlerContext[Any]) -> tuple[StepRepository, Step, Position | None]:
        """The repository, the commanded step and the position its actor acts in."""
        repository = steps(ctx)
        cmd = ctx.message
        step = commanded(await repository.get(cmd.step_id), cmd.step_id, cmd.person_id)
        return repository, step, await repository.acting(ctx.actor)

    async def done(ctx: HandlerContext[Any], repository: StepRepository, change: Change) -> None:
        await repository.save(change)
        ctx.emit(change.event)

    def made(ctx: HandlerContext[Any], name: str) -> uuid.UUID:
        """An id derived from the command: a redelivered command makes the same one."""
        return uuid.uuid5(ctx.envelope.message_id, name)

    @dispatcher.on(SaveStep)
    async def save_step(ctx: HandlerContext[SaveStep]) -> None:
        """SO09: saving keeps the step open."""
        repository, step, by = await load(ctx)
        await done(ctx, repository, step.save(by, ctx.message.answers))

    @dispatcher.on(SendRequest)
    async def send_request(ctx: HandlerContext[SendRequest]) -> None:
        """SO01, SO02."""
        repository, step, by = await load(ctx)
        await done(ctx, repository, step.send_request(by, made(ctx, "request")))

    @dispatcher.on(AddNextActions)
    async def add_next_actions(ctx: HandlerContext[AddNextActions]) -> None:
        """SO03, SO04."""
        repository, step, by = await load(ctx)
        actions = ctx.message.actions
        ids = [made(ctx, f"action-{i}") for i in range(len(actions))]
        known_workers = await repository.worker_roles(actions)
        await done(ctx, repository, step.add_next_actions(by, actions, ids, known_workers))

    @dispatcher.on(ChangeNextAction)
    async def change_next_action(ctx: HandlerContext[ChangeNextAction]) -> None:
        """SO10: change a next action before the step is finished."""
        repository, step, by = await load(ctx)
        cmd = ctx.message
        known_workers = await repository.worker_roles([cmd.action])
        change = step.change_next_action(by, cmd.action_id, cmd.action, known_workers)
        await done(ctx, repository, change)

    @dispatcher.on(RemoveNextAction)
    async def remove_next_action(ctx: HandlerContext[RemoveNextAction]) -> None:
        """SO10: remove a next action before the step is finished; it will not be sent."""
        repository, step, by = await load(ctx)
        await done(ctx, repository, step.remove_next_action(by, ctx.message.action_id))

    @dispatcher.on(CompleteRequest)
    async def complete_request(ctx: HandlerContext[CompleteRequest]) -> None:
        """SO07: accept."""
        repository, step, by = await load(ctx)
        await done(ctx, repository, step.complete_request(by, ctx.message.request_id))

    @dispatcher.on(ReturnRequest)
    async def return_request(ctx: HandlerContext[ReturnRequest]) -> None:
        """SO07: reject with a note; the step exits unfinished, back to the worker who
        completed it (allocation moves it on `request_returned`)."""
        repository, step, by = await load(ctx)
        cmd = ctx.message
        await done(ctx, repository, step.return_request(by, cmd.request_id, cmd.note))

    @dispatcher.on(FinishStep)
    async def finish_step(ctx: HandlerContext[FinishStep]) -> None:
        """SO05, SO08, SO09, AL13: lock the step and send its next actions (allocation turns
        each into new work, SO06) with the form's content for the person's Documents (AL15).
        A second finish is refused by the lock, so StepFinished is emitted once."""
        repository, step, by = await load(ctx)
        await done(ctx, repository, step.finish(by))
