"""A dict-backed sign-off repository for handler unit tests (cosmicpython's FakeRepository): the
handlers run over it with `HandlerContext.for_message`, no broker and no database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from contracts import Actor
from contracts.signoff import NextActionInput
from services.shared.positions import Position
from services.shared.transaction import Dispatcher
from services.signoff.domain import Change, Step
from services.signoff.handlers import commands


@dataclass
class FakeSteps:
    """Steps by id, the directory's active positions by id, and every change saved."""

    steps: dict[uuid.UUID, Step] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    saved: list[Change] = field(default_factory=list)

    async def get(self, step_id: uuid.UUID) -> Step | None:
        # The stored object itself (an identity map): a decision changes it only once every
        # rule has passed, so a refused command leaves it as it was.
        return self.steps.get(step_id)

    async def acting(self, actor: Actor | None) -> Position | None:
        held = self.positions.get(actor.position_id or "") if actor else None
        return held if held is not None and actor and held.user_id == actor.user_id else None

    async def worker_roles(self, actions: Sequence[NextActionInput]) -> dict[str, str]:
        return {
            a.assignee_id: self.positions[a.assignee_id].role
            for a in actions
            if a.assignee_kind == "worker" and a.assignee_id in self.positions
        }

    async def save(self, change: Change) -> None:
        self.saved.append(change)

    def dispatcher(self) -> Dispatcher:
        """Sign-off's command handlers, each given this repository."""
        dispatcher = Dispatcher()
        commands.register(dispatcher, lambda _tx: self)
        return dispatcher
