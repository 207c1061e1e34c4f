"""Notifications' repositories, on the transaction: the directory projection as notifications
reads it (who holds a position, who is responsible), the deliveries (planned, waiting, sent),
the reminder schedule, and the subscriptions (channel preferences, webhooks). Handlers, the
delivery worker and the reminder scan work through them; handler unit tests give fakes with
the same methods (tests/notifications/fakes.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.notifications import domain, store
from services.shared.positions import Position
from services.shared.transaction import Transaction


class People(Protocol):
    async def user_of_position(self, position_id: str | None) -> str | None: ...

    async def position(self, position_id: str) -> Position | None: ...  # held or not any more

    async def find_unit_id(self, team: str) -> str | None: ...

    async def unit_name(self, unit_id: str) -> str: ...

    async def members_with_roles(
        self, unit_ids: Sequence[str], roles: Sequence[str]
    ) -> list[str]: ...

    async def responsible_managers(self, user_id: str, fallback_unit: str) -> list[str]: ...

    async def line_managers(self, user_ids: Sequence[str]) -> list[str]: ...


class Deliveries(Protocol):
    async def audience(
        self, user_ids: Sequence[str], kind: str
    ) -> tuple[list[domain.Recipient], list[domain.Webhook]]: ...

    async def add(
        self,
        planned: Sequence[domain.Delivery],
        *,
        source_id: uuid.UUID,
        correlation_id: uuid.UUID | None,
        now: datetime,
    ) -> list[domain.Delivery]: ...

    async def waiting_for(self, position_id: str) -> list[domain.Waiting]: ...

    async def resolved(self, delivery_id: uuid.UUID, now: datetime) -> None: ...

    async def unpark(self, delivery_ids: Sequence[uuid.UUID], now: datetime) -> list[uuid.UUID]: ...


class Reminders(Protocol):
    async def schedule(
        self,
        *,
        series: str,
        reminder: domain.Reminder,
        deadline: datetime,
        user_id: str,
        position_id: str,
    ) -> None: ...

    async def cancel_series(self, series: str, *, due_before: datetime | None = None) -> None: ...

    async def pending_in_series(self, series: str, kind: str) -> list[domain.ScheduledReminder]: ...

    async def fired(self, reminder_id: uuid.UUID, now: datetime) -> None: ...

    async def due(self, now: datetime, limit: int) -> list[domain.ScheduledReminder]: ...


class Subscriptions(Protocol):
    async def set_preferences(
        self, user_id: str, channels: Sequence[str], now: datetime
    ) -> None: ...

    async def webhook_owner(self, webhook_id: str) -> str | None: ...

    async def register_webhook(
        self,
        webhook_id: str,
        url: str,
        secret: str,
        event_types: Sequence[str],
        now: datetime,
        owner_id: str,
    ) -> bool: ...

    async def remove_webhook(self, webhook_id: str, now: datetime) -> None: ...


@dataclass
class Repositories:
    people: People
    deliveries: Deliveries
    reminders: Reminders
    subscriptions: Subscriptions

    @classmethod
    def sql(cls, tx: Transaction) -> Repositories:
        conn = tx.conn
        return cls(SqlPeople(conn), SqlDeliveries(conn), SqlReminders(conn), SqlSubscriptions(conn))


# --- On the database -----------------------------------------------------------------------


def _reminder(row: Any) -> domain.ScheduledReminder:
    return domain.ScheduledReminder(
        reminder_id=row.reminder_id,
        series=row.series,
        kind=row.kind,
        due_at=row.due_at,
        deadline=row.deadline,
        escalate=row.escalate,
        user_id=row.user_id,
        position_id=row.position_id,
    )


class SqlPeople:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def user_of_position(self, position_id: str | None) -> str | None:
        return await store.user_of_position(self.conn, position_id)

    async def position(self, position_id: str) -> Position | None:
        return await store.directory.position(self.conn, position_id, active_only=False)

    async def find_unit_id(self, team: str) -> str | None:
        return await store.find_unit_id(self.conn, team)

    async def unit_name(self, unit_id: str) -> str:
        return await store.unit_name(self.conn, unit_id)

    async def members_with_roles(self, unit_ids: Sequence[str], roles: Sequence[str]) -> list[str]:
        return await store.members_with_roles(self.conn, unit_ids, roles)

    async def responsible_managers(self, user_id: str, fallback_unit: str) -> list[str]:
        return await store.responsible_managers(self.conn, user_id, fallback_unit)

    async def line_managers(self, user_ids: Sequence[str]) -> list[str]:
        return await store.line_managers(self.conn, user_ids)


class SqlDeliveries:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def audience(
        self, user_ids: Sequence[str], kind: str
    ) -> tuple[list[domain.Recipient], list[domain.Webhook]]:
        return await store.audience(self.conn, user_ids, kind)

    async def add(
        self,
        planned: Sequence[domain.Delivery],
        *,
        source_id: uuid.UUID,
        correlation_id: uuid.UUID | None,
        now: datetime,
    ) -> list[domain.Delivery]:
        return await store.insert_deliveries(
            self.conn, planned, source_id=source_id, correlation_id=correlation_id, now=now
        )

    async def waiting_for(self, position_id: str) -> list[domain.Waiting]:
        return [
            domain.Waiting(
                delivery_id=w.delivery_id,
                source_id=w.source_id,
                correlation_id=w.correlation_id,
                notice=domain.Notice(w.kind, w.rule, w.subject, w.body, w.data),
            )
            for w in await store.waiting_for(self.conn, position_id)
        ]

    async def resolved(self, delivery_id: uuid.UUID, now: datetime) -> None:
        await store.mark_resolved(self.conn, delivery_id, now)

    async def unpark(self, delivery_ids: Sequence[uuid.UUID], now: datetime) -> list[uuid.UUID]:
        return await store.unpark(self.conn, delivery_ids, now)

    # The delivery worker's (not a handler's) part.

    async def claim_due(self, now: datetime, limit: int) -> list[Any]:
        return await store.claim_due(self.conn, now, limit)

    async def webhook_targets(self, webhook_ids: Sequence[str]) -> dict[str, store.WebhookTarget]:
        return await store.webhook_targets(self.conn, webhook_ids)

    async def attempted(self, delivery_id: uuid.UUID, values: dict[str, Any]) -> None:
        d = store.deliveries
        await self.conn.execute(d.update().where(d.c.delivery_id == delivery_id).values(**values))


class SqlReminders:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def schedule(
        self,
        *,
        series: str,
        reminder: domain.Reminder,
        deadline: datetime,
        user_id: str,
        position_id: str,
    ) -> None:
        await store.schedule(
            self.conn,
            series=series,
            reminder=reminder,
            deadline=deadline,
            user_id=user_id,
            position_id=position_id,
        )

    async def cancel_series(self, series: str, *, due_before: datetime | None = None) -> None:
        await store.cancel_series(self.conn, series, due_before=due_before)

    async def pending_in_series(self, series: str, kind: str) -> list[domain.ScheduledReminder]:
        return [_reminder(r) for r in await store.pending_in_series(self.conn, series, kind)]

    async def fired(self, reminder_id: uuid.UUID, now: datetime) -> None:
        await store.mark_fired(self.conn, reminder_id, now)

    async def due(self, now: datetime, limit: int) -> list[domain.ScheduledReminder]:
        return [_reminder(r) for r in await store.reminders_due(self.conn, now, limit)]


class SqlSubscriptions:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def set_preferences(self, user_id: str, channels: Sequence[str], now: datetime) -> None:
        await store.set_preferences(self.conn, user_id, channels, now)

    async def webhook_owner(self, webhook_id: str) -> str | None:
        return await store.webhook_owner(self.conn, webhook_id)

    async def register_webhook(
        self,
        webhook_id: str,
        url: str,
        secret: str,
        event_types: Sequence[str],
        now: datetime,
        owner_id: str,
    ) -> bool:
        return await store.upsert_webhook(
            self.conn, webhook_id, url, secret, event_types, now, owner_id
        )

    async def remove_webhook(self, webhook_id: str, now: datetime) -> None:
        await store.remove_webhook(self.conn, webhook_id, now)
