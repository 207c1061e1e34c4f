"""The envelope every message travels in, and the base classes of commands and events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.limits import STRING_MAX, Text, find_nul

_REGISTRY: dict[str, type[Message]] = {}

# Kafka header on every event a consumed message caused: how many events it caused in all
# (across topics), so that a caller knows when it has seen the whole outcome of its command.
OUTCOME_SIZE_HEADER = "outcome-size"


class Bounded(BaseModel):
    """TR08: every string is bounded (STRING_MAX unless a field names its own limit) and holds
    no NUL character, so what validates here can be stored and published."""

    model_config = ConfigDict(str_max_length=STRING_MAX)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        found = find_nul(data)
        if found:
            raise ValueError(f"{found}: text must not contain NUL characters (U+0000)")
        return data


class Actor(Bounded):
    """Who acts: a user and the position they currently act in."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    position_id: str | None = None


class Message(Bounded):
    """A payload. Subclasses set TYPE (`<service>.<name>.v<version>`) and KEY_FIELD, the payload
    field whose value keys the Kafka record so that related messages keep their order."""

    model_config = ConfigDict(extra="forbid")

    TYPE: ClassVar[str] = ""
    KEY_FIELD: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE:
            if cls.TYPE in _REGISTRY and _REGISTRY[cls.TYPE] is not cls:
                raise ValueError(f"message type {cls.TYPE} registered twice")
            _REGISTRY[cls.TYPE] = cls

    def key(self) -> str | None:
        return str(getattr(self, self.KEY_FIELD)) if self.KEY_FIELD else None


class Command(Message):
    """A request to change state. Exactly one outcome follows on the owning service's event topic:
    the events it caused, or a CommandRejected naming the rule."""


class Event(Message):
    """A fact that happened."""


class CommandRejected(Event):
    """A command refused. `rule` is a rule id from RULES.md (e.g. AL05) or a plumbing code
    (`actor-token` for a missing, expired or forged actor)."""

    TYPE: ClassVar[str] = "platform.command_rejected.v1"
    KEY_FIELD: ClassVar[str | None] = "command_id"

    command_id: uuid.UUID
    command_type: str
    rule: str
    reason: Text


class Envelope(BaseModel):
    """What goes on the wire. `payload` is validated against the model its `type` names."""

    model_config = ConfigDict(extra="forbid", str_max_length=STRING_MAX)

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    correlation_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    causation_id: uuid.UUID | None = None
    actor: Actor | None = None
    payload: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        message: Message,
        *,
        actor: Actor | None = None,
        correlation_id: uuid.UUID | None = None,
        causation_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Self:
        return cls(
            type=message.TYPE,
            payload=message.model_dump(mode="json"),
            actor=actor,
            correlation_id=correlation_id or uuid.uuid4(),
            causation_id=causation_id,
            occurred_at=occurred_at or datetime.now(UTC),
        )

    def caused(self, message: Message, occurred_at: datetime | None = None) -> Envelope:
        """An envelope for a message this one caused: same correlation, this one as the cause."""
        return Envelope.wrap(
            message,
            actor=self.actor,
            correlation_id=self.correlation_id,
            causation_id=self.message_id,
            occurred_at=occurred_at,
        )

    def open(self) -> Message:
        """Validate the payload against its registered model (KeyError, ValidationError)."""
        return message_class(self.type).model_validate(self.payload)


def message_class(type_name: str) -> type[Message]:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise KeyError(f"unknown message type {type_name!r}") from None


def registered_types() -> dict[str, type[Message]]:
    return dict(_REGISTRY)
