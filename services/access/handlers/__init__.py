"""Access's message handlers, by topic: each loads the aggregate (a user's holdings, a P30,
the directory) through the repositories, lets it decide (services/access/domain.py), saves the
change and emits its events. Commands come on access.commands (keyed by user id, so one user's
grants and removals apply in order); the answers of the removal saga and the work ownership
come from allocation.events.

`build(repositories)` makes the dispatcher over other repositories (handler unit tests give
fakes); `dispatcher` is the service's, over the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts import Topics
from services.access import work_ownership
from services.access.handlers import (
    current_position,
    directory_load,
    emergency,
    grants,
    removal,
    reviews,
)
from services.access.handlers._steps import Handler
from services.access.repository import Repositories
from services.shared.transaction import Dispatcher, HandlerContext, Transaction

CONSUMES = [Topics.ACCESS_COMMANDS, Topics.ALLOCATION_EVENTS]
TOPICS = (directory_load, grants, emergency, reviews, removal, current_position)


def _bound(handler: Handler, repositories: Callable[[Transaction], Repositories]) -> Any:
    async def handle(ctx: HandlerContext[Any]) -> None:
        await handler(ctx, repositories(ctx))

    handle.__name__ = handler.__name__
    handle.__doc__ = handler.__doc__
    return handle


def build(repositories: Callable[[Transaction], Repositories] = Repositories.sql) -> Dispatcher:
    dispatcher = Dispatcher()
    # Work ownership (AC18's views) is projected from every allocation event first, in its own
    # module; the saga's handlers then see the projection up to date.
    work_ownership.register(dispatcher)
    for topic in TOPICS:
        for message_type, handler in topic.HANDLERS.items():
            dispatcher.add(message_type.TYPE, _bound(handler, repositories))
    return dispatcher


dispatcher = build()
