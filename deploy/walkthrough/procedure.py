"""A procedure of the walkthrough: its name, a fresh state for each run (a dataclass of what its
steps learn along the way) and its steps in order, each a title and a coroutine that checks what
it expects and says what it observed."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from deploy.walkthrough.driver import Driver

S = TypeVar("S")
StepFn = Callable[[Driver, S], Awaitable[str]]

# An id a step has not learnt yet (a later step that needs it runs only after the one that
# learns it: a failed step stops its procedure).
NOT_YET = uuid.UUID(int=0)


@dataclass(frozen=True)
class Procedure(Generic[S]):
    name: str
    state: Callable[[], S]
    steps: list[tuple[str, StepFn[S]]]
