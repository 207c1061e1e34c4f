"""The public language of the platform: the envelope, commands, events and topic names.

Every message on every topic is an `Envelope` whose `payload` is one of the models
registered here; `type` names the model and its version (`allocation.work_created.v1`).
"""

from contracts.envelope import (
    OUTCOME_SIZE_HEADER,
    Actor,
    Command,
    CommandRejected,
    Envelope,
    Event,
    Message,
    message_class,
    registered_types,
)
from contracts.topics import Topics

__all__ = [
    "OUTCOME_SIZE_HEADER",
    "Actor",
    "Command",
    "CommandRejected",
    "Envelope",
    "Event",
    "Message",
    "Topics",
    "message_class",
    "registered_types",
]

# Register every service's message types with the envelope registry.
from contracts import access as access
from contracts import allocation as allocation
from contracts import notifications as notifications
from contracts import signoff as signoff
