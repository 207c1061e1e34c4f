"""Sign-off's dispatcher and the topics it consumes; the shared directory projection's handlers
come first, so a command in the same batch reads the directory as it now is."""

from contracts import Topics
from services.shared import directory
from services.shared.transaction import Dispatcher
from services.signoff import store

dispatcher = Dispatcher()
directory.register(dispatcher, store.directory_t)
CONSUMES = [Topics.SIGNOFF_COMMANDS, Topics.ALLOCATION_EVENTS, Topics.ACCESS_EVENTS]
