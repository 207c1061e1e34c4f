"""The service's dispatcher: the shared directory projection's handlers first, then each topic
module's, bound to the repositories of the handler's transaction."""

from __future__ import annotations

from typing import Any

from contracts import Message, Topics
from services.allocation import store
from services.allocation.handlers._steps import Ctx, Handler
from services.allocation.repository import Repositories
from services.shared.directory import register as register_directory
from services.shared.transaction import Dispatcher

dispatcher = Dispatcher()
CONSUMES = [Topics.ALLOCATION_COMMANDS, Topics.ACCESS_EVENTS, Topics.SIGNOFF_EVENTS]
register_directory(dispatcher, store.directory_t)


def register(handlers: dict[type[Message], Handler]) -> None:
    """Each handler runs on the SQL repositories of its context's transaction."""
    for message_type, handler in handlers.items():
        dispatcher.add(message_type.TYPE, _bound(handler))


def _bound(handler: Handler) -> Any:
    async def run(ctx: Ctx) -> None:
        await handler(ctx, Repositories.sql(ctx))

    run.__name__ = run.__qualname__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run
