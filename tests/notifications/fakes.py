"""Dict-backed fakes of notifications' repositories (cosmicpython's FakeRepository): handler
unit tests build a `HandlerContext.for_message`, call a handler module's handler with
`FakeNotifications` and read what it emitted and kept, without the broker or the database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts import Actor, Command, Event
from services.notifications import domain
from services.notifications.handlers._notify import Handler
from services.notifications.repository import Repositories
from services.shared.positions import Position
from services.shared.transaction import HandlerContext

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday


def position(
    position_id: str, user_id: str, unit_id: str, role: str, kind: str = "primary"
) -> Position:
    return Position(position_id, user_id, unit_id, role, kind, emergency=False)


POSITIONS = [
    position("pos-so", "so", "north", "Senior Officer"),
    position("pos-ta", "ta", "north", "Trusted Assessor"),
    position("pos-tl", "tl", "team-1", "team leader"),
    position("pos-cw", "cw", "team-1", "caseworker"),
]


class FakePeople:
    def __init__(self, positions: Sequence[Position] = POSITIONS) -> None:
        self.positions = {p.position_id: p for p in positions}
        self.units = {"north": "North Team", "team-1": "Team 1", "team-2": "Team 2"}
        self.line_manager_of = {"cw": "tl", "tl": "sm"}

    async def user_of_position(self, position_id: str | None) -> str | None:
        held = self.positions.get(position_id or "")
        return held.user_id if held else None

    async def position(self, position_id: str) -> Position | None:
        return self.positions.get(position_id)

    async def find_unit_id(self, team: str) -> str | None:
        return next((u for u, name in self.units.items() if team in (u, name)), None)

    async def unit_name(self, unit_id: str) -> str:
        return self.units.get(unit_id, unit_id)

    async def members_with_roles(self, unit_ids: Sequence[str], roles: Sequence[str]) -> list[str]:
        return sorted(
            {
                p.user_id
                for p in self.positions.values()
                if p.unit_id in unit_ids and p.role in roles
            }
        )

    async def responsible_managers(self, user_id: str, fallback_unit: str) -> list[str]:
        return [
            m
            for m in await self.members_with_roles([fallback_unit], sorted(domain.MANAGER_ROLES))
            if m != user_id
        ]

    async def line_managers(self, user_ids: Sequence[str]) -> list[str]:
        return list(
            dict.fromkeys(self.line_manager_of[u] for u in user_ids if u in self.line_manager_of)
        )


class FakeDeliveries:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, tuple[uuid.UUID, domain.Delivery]] = {}  # id: (source, delivery)
        self.waiting: dict[str, list[domain.Waiting]] = {}
        self.resolved_ids: list[uuid.UUID] = []
        self.parked: list[uuid.UUID] = []

    async def audience(
        self, user_ids: Sequence[str], kind: str
    ) -> tuple[list[domain.Recipient], list[domain.Webhook]]:
        return [domain.Recipient(u) for u in dict.fromkeys(user_ids) if u], []

    async def add(
        self,
        planned: Sequence[domain.Delivery],
        *,
        source_id: uuid.UUID,
        correlation_id: uuid.UUID | None,
        now: datetime,
    ) -> list[domain.Delivery]:
        new = [d for d in planned if d.delivery_id not in self.rows]
        self.rows.update({d.delivery_id: (source_id, d) for d in new})
        return new

    async def waiting_for(self, position_id: str) -> list[domain.Waiting]:
        return self.waiting.get(position_id, [])

    async def resolved(self, delivery_id: uuid.UUID, now: datetime) -> None:
        self.resolved_ids.append(delivery_id)

    async def unpark(self, delivery_ids: Sequence[uuid.UUID], now: datetime) -> list[uuid.UUID]:
        return sorted(d for d in self.parked if not delivery_ids or d in delivery_ids)

    def told(self, channel: str = "inbox") -> set[tuple[str, str]]:
        """(recipient, rule) of every delivery planned on `channel`."""
        return {(d.recipient_id, d.rule) for _, d in self.rows.values() if d.channel == channel}


@dataclass
class FakeReminders:
    scheduled: list[domain.ScheduledReminder] = field(default_factory=list)
    status: dict[uuid.UUID, str] = field(default_factory=dict)

    async def schedule(
        self,
        *,
        series: str,
        reminder: domain.Reminder,
        deadline: datetime,
        user_id: str,
        position_id: str,
    ) -> None:
        reminder_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{series}|{reminder.kind}|{reminder.due_at}")
        if reminder_id in self.status:
            return
        self.scheduled.append(
            domain.ScheduledReminder(
                reminder_id,
                series,
                reminder.kind,
                reminder.due_at,
                deadline,
                reminder.escalate,
                user_id,
                position_id,
            )
        )
        self.status[reminder_id] = "pending"

    def pending(self, series: str | None = None) -> list[domain.ScheduledReminder]:
        return [
            r
            for r in self.scheduled
            if self.status[r.reminder_id] == "pending" and series in (None, r.series)
        ]

    async def cancel_series(self, series: str, *, due_before: datetime | None = None) -> None:
        for r in self.pending(series):
            if due_before is None or r.due_at < due_before:
                self.status[r.reminder_id] = "cancelled"

    async def pending_in_series(self, series: str, kind: str) -> list[domain.ScheduledReminder]:
        return [r for r in self.pending(series) if r.kind == kind]

    async def fired(self, reminder_id: uuid.UUID, now: datetime) -> None:
        self.status[reminder_id] = "fired"

    async def due(self, now: datetime, limit: int) -> list[domain.ScheduledReminder]:
        return [r for r in self.pending() if r.due_at <= now][:limit]


@dataclass
class FakeSubscriptions:
    owners: dict[str, str] = field(default_factory=dict)
    preferences: dict[str, list[str]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    async def set_preferences(self, user_id: str, channels: Sequence[str], now: datetime) -> None:
        self.preferences[user_id] = list(channels)

    async def webhook_owner(self, webhook_id: str) -> str | None:
        return self.owners.get(webhook_id)

    async def register_webhook(
        self,
        webhook_id: str,
        url: str,
        secret: str,
        event_types: Sequence[str],
        now: datetime,
        owner_id: str,
    ) -> bool:
        if self.owners.setdefault(webhook_id, owner_id) != owner_id:
            return False
        return True

    async def remove_webhook(self, webhook_id: str, now: datetime) -> None:
        self.removed.append(webhook_id)


class FakeNotifications(Repositories):
    people: FakePeople
    deliveries: FakeDeliveries
    reminders: FakeReminders
    subscriptions: FakeSubscriptions

    def __init__(self, positions: Sequence[Position] = POSITIONS) -> None:
        super().__init__(
            FakePeople(positions), FakeDeliveries(), FakeReminders(), FakeSubscriptions()
        )


async def handle(
    handler: Handler,
    message: Command | Event,
    repos: FakeNotifications,
    *,
    actor: str | None = None,
    roles: frozenset[str] = frozenset(),
    now: datetime = NOW,
) -> HandlerContext[Any]:
    ctx: HandlerContext[Any] = HandlerContext.for_message(
        message, now=now, actor=Actor(user_id=actor) if actor else None, roles=roles
    )
    await handler(ctx, repos)
    return ctx


def types(events: Sequence[Event]) -> list[str]:
    return [type(e).__name__ for e in events]
