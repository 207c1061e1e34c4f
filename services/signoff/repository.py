"""Sign-off's repository: loads a `Step` with the directory facts its decisions need (the acting
position, the worker positions next actions name) and saves a `Change` in one place. Handlers
get one per transaction; their unit tests get a fake (tests/signoff/fakes.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from contracts import Actor
from contracts.signoff import (
    NextActionChanged,
    NextActionInput,
    NextActionRemoved,
    NextActionsAdded,
    RequestCompleted,
    RequestReturned,
    RequestSent,
    StepFinished,
    StepSaved,
)
from services.shared.positions import Position
from services.shared.transaction import Transaction
from services.signoff import store
from services.signoff.domain import Change, RequestState, Step


class StepRepository(Protocol):
    async def get(self, step_id: uuid.UUID) -> Step | None:
        """The step with its next actions and requests (locked for the transaction)."""

    async def acting(self, actor: Actor | None) -> Position | None:
        """The actor's position if they hold it and it is active, with its unit's name."""

    async def worker_roles(self, actions: Sequence[NextActionInput]) -> dict[str, str]:
        """The active worker positions the actions name, with their roles (SO04, SO10)."""

    async def save(self, change: Change) -> None:
        """Write what the change did to the step."""


class SqlSteps:
    """The repository over the service's tables, in the handler's transaction."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, step_id: uuid.UUID) -> Step | None:
        return await store.load_step(self.tx.conn, step_id)

    async def acting(self, actor: Actor | None) -> Position | None:
        return await store.acting_position(self.tx.conn, actor)

    async def worker_roles(self, actions: Sequence[NextActionInput]) -> dict[str, str]:
        roles = {}
        for a in actions:
            if a.assignee_kind != "worker":
                continue
            position = await store.directory.position(self.tx.conn, a.assignee_id)
            if position is not None:
                roles[a.assignee_id] = position.role
        return roles

    async def save(self, change: Change) -> None:
        now, event = self.tx.now, change.event
        s, a, r = store.steps, store.next_actions, store.requests
        match event:
            case StepSaved():
                await self.tx.execute(
                    s.update()
                    .where(s.c.step_id == event.step_id)
                    .values(answers=event.answers, updated_at=now)
                )
            case RequestSent():
                await self.tx.execute(
                    r.insert().values(
                        request_id=event.request_id,
                        step_id=event.step_id,
                        person_id=event.person_id,
                        title=event.title,
                        team=event.team,
                        state=RequestState.OUTSTANDING.value,
                        sent_by_position_id=event.sent_by_position_id,
                        sent_at=now,
                    )
                )
            case NextActionsAdded():
                await self.tx.execute(
                    a.insert(),
                    [
                        {
                            **action.model_dump(),
                            "step_id": event.step_id,
                            "added_by_position_id": change.by,
                            "added_at": now,
                        }
                        for action in event.next_actions
                    ],
                )
            case NextActionChanged():
                changed = event.next_action
                await self.tx.execute(
                    a.update()
                    .where(a.c.action_id == changed.action_id, a.c.step_id == event.step_id)
                    .values(**changed.model_dump(exclude={"action_id"}))
                )
            case NextActionRemoved():
                await self.tx.execute(
                    a.delete().where(a.c.action_id == event.action_id, a.c.step_id == event.step_id)
                )
            case RequestCompleted() | RequestReturned():
                returned = isinstance(event, RequestReturned)
                await self.tx.execute(
                    r.update()
                    .where(r.c.request_id == event.request_id)
                    .values(
                        state=(RequestState.RETURNED if returned else RequestState.COMPLETED).value,
                        resolved_by_position_id=change.by,
                        resolved_at=now,
                        note=event.note if isinstance(event, RequestReturned) else None,
                    )
                )
            case StepFinished():
                await self.tx.execute(
                    s.update()
                    .where(s.c.step_id == event.step_id)
                    .values(
                        finished=True,
                        finished_by_position_id=event.finished_by_position_id,
                        finished_at=now,
                        updated_at=now,
                    )
                )
