"""Topic names. One command topic and one event topic per service; `<topic>.dlq` beside each
consumed topic holds what could not be parsed or validated."""

from typing import ClassVar


class Topics:
    ALLOCATION_COMMANDS: ClassVar[str] = "allocation.commands"
    ALLOCATION_EVENTS: ClassVar[str] = "allocation.events"
    SIGNOFF_COMMANDS: ClassVar[str] = "signoff.commands"
    SIGNOFF_EVENTS: ClassVar[str] = "signoff.events"
    ACCESS_COMMANDS: ClassVar[str] = "access.commands"
    ACCESS_EVENTS: ClassVar[str] = "access.events"
    NOTIFICATIONS_COMMANDS: ClassVar[str] = "notifications.commands"
    NOTIFICATIONS_EVENTS: ClassVar[str] = "notifications.events"

    @staticmethod
    def dead_letter(topic: str) -> str:
        return f"{topic}.dlq"

    @staticmethod
    def is_dead_letter(topic: str) -> bool:
        return topic.endswith(".dlq")

    @classmethod
    def all(cls) -> list[str]:
        base = [
            cls.ALLOCATION_COMMANDS,
            cls.ALLOCATION_EVENTS,
            cls.SIGNOFF_COMMANDS,
            cls.SIGNOFF_EVENTS,
            cls.ACCESS_COMMANDS,
            cls.ACCESS_EVENTS,
            cls.NOTIFICATIONS_COMMANDS,
            cls.NOTIFICATIONS_EVENTS,
        ]
        return base + [cls.dead_letter(t) for t in base]
