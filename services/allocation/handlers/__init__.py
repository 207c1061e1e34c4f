"""Allocation's message handlers, one module per topic of the procedure, each load -> decide
(the work item, services.allocation.domain) -> save (the repositories) -> emit.

Commands arrive on allocation.commands; the directory (access.events) and sign-off's outcomes
(signoff.events) arrive as events. The shared directory projection's handlers run first
(registry.py), then the service's own."""

from services.allocation.handlers import (
    assigning,
    bulk,
    intake,
    moves,
    relationships,
    signoff_outcomes,
)
from services.allocation.handlers.registry import CONSUMES, dispatcher, register

for _module in (intake, assigning, bulk, relationships, moves, signoff_outcomes):
    register(_module.HANDLERS)

__all__ = ["CONSUMES", "dispatcher"]
