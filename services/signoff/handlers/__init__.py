"""Sign-off's message handlers, one module per topic: `work_items` (the steps learnt from
allocation.events) and `commands` (signoff.commands: load the step, decide, save, emit)."""

from services.signoff.handlers import commands, work_items
from services.signoff.handlers.registry import CONSUMES, dispatcher

commands.register(dispatcher)

__all__ = ["CONSUMES", "commands", "dispatcher", "work_items"]
