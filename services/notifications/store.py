"""Notifications' tables (schema `notifications`) and queries: the directory projection, channel
preferences, webhook registrations, deliveries (the in-app inbox is the `inbox` channel's rows)
and the reminder schedule."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications import domain
from services.shared.directory import Directory, directory_tables
from services.shared.plumbing_tables import inbox_table, outbox_table

SCHEMA = "notifications"
metadata = sa.MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
directory_t = directory_tables(metadata)
directory = Directory(directory_t)

PENDING, SENT, PARKED = "pending", "sent", "parked"


preferences = sa.Table(
    "preferences",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("channels", ARRAY(sa.Text), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("webhook_id", sa.Text, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("event_types", ARRAY(sa.Text), nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    # TR06: the integration administrator the id belongs to (kept after removal, so the id
    # cannot be taken over); None for registrations older than owners.
    sa.Column("owner_id", sa.Text),
    sa.Column("removed_at", sa.DateTime(timezone=True)),
)

# NT07: one row per (source event, recipient, channel, kind), written in the transaction that
# consumed the source event; the delivery worker sends the pending ones. The `inbox` channel's
# rows are the in-app inbox.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("source_id", UUID(as_uuid=True), nullable=False),
    sa.Column("correlation_id", UUID(as_uuid=True)),
    sa.Column("recipient_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("data", JSONB, nullable=False, server_default="{}"),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("read_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("source_id", "recipient_id", "channel", "kind", name="uq_deliveries_once"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_recipient", "recipient_id", "channel", "created_at"),
)

# NT04, NT05: the durable schedule. A row fires once (status pending -> fired) in the same
# transaction that plans its deliveries; a series ends when its cause goes away.
reminders = sa.Table(
    "reminders",
    metadata,
    sa.Column("reminder_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("series", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("escalate", sa.Boolean, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("position_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True)),
    sa.Index("ix_reminders_series", "series"),
    sa.Index("ix_reminders_due", "status", "due_at"),
)


# --- recipients ----------------------------------------------------------------------------


async def audience(
    conn: AsyncConnection, user_ids: Sequence[str], kind: str
) -> tuple[list[domain.Recipient], list[domain.Webhook]]:
    """In one round trip: the users with their e-mail address and channel preferences (unknown
    users still get the inbox: nothing is silently dropped) and the webhooks registered for the
    notice's kind."""
    ids = list(dict.fromkeys(u for u in user_ids if u))
    if not ids:
        return [], []
    u, p, w = directory_t.users, preferences, webhooks
    users = (
        sa.select(
            sa.literal("user").label("what"),
            u.c.user_id.label("id"),
            u.c.email.label("address"),
            p.c.channels.label("names"),
        )
        .select_from(u.outerjoin(p, p.c.user_id == u.c.user_id))
        .where(u.c.user_id.in_(ids))
    )
    hooks = sa.select(
        sa.literal("webhook").label("what"),
        w.c.webhook_id.label("id"),
        w.c.url.label("address"),
        w.c.event_types.label("names"),
    ).where(sa.or_(w.c.event_types.any(kind), w.c.event_types.any("*")), w.c.removed_at.is_(None))
    rows = (await conn.execute(sa.union_all(users, hooks))).all()
    known = {r.id: r for r in rows if r.what == "user"}

    def recipient(user_id: str) -> domain.Recipient:
        row = known.get(user_id)
        if row is None:
            return domain.Recipient(user_id)
        channels = frozenset(row.names) if row.names else domain.DEFAULT_CHANNELS
        return domain.Recipient(user_id, row.address, channels)

    hooks_found = [
        domain.Webhook(r.id, r.address, frozenset(r.names)) for r in rows if r.what == "webhook"
    ]
    return [recipient(user_id) for user_id in ids], hooks_found


async def user_of_position(conn: AsyncConnection, position_id: str | None) -> str | None:
    if not position_id:
        return None
    p = directory_t.positions
    return await conn.scalar(sa.select(p.c.user_id).where(p.c.position_id == position_id))


async def find_unit_id(conn: AsyncConnection, team: str) -> str | None:
    """A team named by id or by name."""
    u = directory_t.units
    return await conn.scalar(
        sa.select(u.c.unit_id).where(sa.or_(u.c.unit_id == team, u.c.name == team)).limit(1)
    )


async def unit_name(conn: AsyncConnection, unit_id: str) -> str:
    unit = await directory.unit(conn, unit_id)
    return str(unit["name"]) if unit else unit_id


async def members_with_roles(
    conn: AsyncConnection, unit_ids: Sequence[str], roles: Sequence[str]
) -> list[str]:
    p = directory_t.positions
    rows = await conn.execute(
        sa.select(p.c.user_id)
        .where(p.c.unit_id.in_(list(unit_ids)), p.c.role.in_(list(roles)), p.c.active.is_(True))
        .order_by(p.c.user_id)
    )
    return list(dict.fromkeys(r.user_id for r in rows))


async def responsible_managers(
    conn: AsyncConnection, user_id: str, fallback_unit: str
) -> list[str]:
    """The TL/SM responsible for a user (NT04, NT05): team leaders and segment managers of the
    user's primary unit and of its parent segment, not the user themself; the line manager when
    there are none."""
    primary = next(
        (p for p in await directory.positions_of(conn, user_id) if p.kind == "primary"), None
    )
    unit_id = primary.unit_id if primary else fallback_unit
    units = [unit_id]
    unit = await directory.unit(conn, unit_id)
    if unit and unit.get("parent_id"):
        units.append(unit["parent_id"])
    managers = [
        m
        for m in await members_with_roles(conn, units, sorted(domain.MANAGER_ROLES))
        if m != user_id
    ]
    if not managers:
        managers = await line_managers(conn, [user_id])
    return managers


async def line_managers(conn: AsyncConnection, user_ids: Sequence[str]) -> list[str]:
    u = directory_t.users
    rows = await conn.execute(
        sa.select(u.c.line_manager_id).where(
            u.c.user_id.in_(list(user_ids)), u.c.line_manager_id.is_not(None)
        )
    )
    return list(dict.fromkeys(r.line_manager_id for r in rows))


# --- deliveries ----------------------------------------------------------------------------


async def insert_deliveries(
    conn: AsyncConnection,
    planned: Sequence[domain.Delivery],
    *,
    source_id: uuid.UUID,
    correlation_id: uuid.UUID | None,
    now: datetime,
) -> list[domain.Delivery]:
    """Writes the planned deliveries; the inbox ones are delivered by this very write. Returns the
    deliveries that were new (NT07: a second planning of the same source adds nothing)."""
    if not planned:
        return []
    rows = [_delivery_row(d, source_id, correlation_id, now) for d in planned]
    # executemany form: the statement compiles once and is cached (a VALUES list would not be).
    stmt = pg_insert(deliveries).on_conflict_do_nothing().returning(deliveries.c.delivery_id)
    new = set((await conn.execute(stmt, rows)).scalars().all())
    return [d for d in planned if d.delivery_id in new]


WAITING_ERROR = domain.WAITING_ERROR


def _delivery_row(
    d: domain.Delivery, source_id: uuid.UUID, correlation_id: uuid.UUID | None, now: datetime
) -> dict[str, Any]:
    inbox = d.channel == "inbox"
    status = PARKED if d.waiting else SENT if inbox else PENDING
    return {
        "delivery_id": d.delivery_id,
        "source_id": source_id,
        "correlation_id": correlation_id,
        "recipient_id": d.recipient_id,
        "channel": d.channel,
        "kind": d.kind,
        "rule": d.rule,
        "subject": d.subject,
        "body": d.body,
        "target": d.target,
        "data": d.data,
        "status": status,
        "next_attempt_at": None if inbox else now,
        "last_error": WAITING_ERROR if d.waiting else None,
        "created_at": now,
        "sent_at": now if status == SENT else None,
    }


async def waiting_for(conn: AsyncConnection, position_id: str) -> list[Any]:
    """Notices parked until someone holds the position (see `domain.waiting_for`)."""
    d = deliveries
    query = sa.select(d).where(
        d.c.recipient_id == domain.waiting_for(position_id), d.c.status == PARKED
    )
    return list((await conn.execute(query.with_for_update())).all())


async def mark_resolved(conn: AsyncConnection, delivery_id: uuid.UUID, now: datetime) -> None:
    d = deliveries
    await conn.execute(
        d.update()
        .where(d.c.delivery_id == delivery_id)
        .values(status="resolved", sent_at=now, last_error=None)
    )


async def claim_due(conn: AsyncConnection, now: datetime, limit: int) -> list[Any]:
    """Pending outbound deliveries whose time has come, locked for this transaction (other
    instances skip them)."""
    d = deliveries
    return list(
        (
            await conn.execute(
                sa.select(d)
                .where(d.c.status == PENDING, d.c.next_attempt_at <= now)
                .order_by(d.c.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


@dataclass(frozen=True)
class WebhookTarget:
    """Where a webhook's deliveries go now, and the secret they are signed with."""

    url: str
    secret: str


async def webhook_targets(
    conn: AsyncConnection, webhook_ids: Sequence[str]
) -> dict[str, WebhookTarget]:
    """The current registrations of these webhooks (removed ones are absent)."""
    if not webhook_ids:
        return {}
    w = webhooks
    rows = await conn.execute(
        sa.select(w.c.webhook_id, w.c.url, w.c.secret).where(
            w.c.webhook_id.in_(list(webhook_ids)), w.c.removed_at.is_(None)
        )
    )
    return {r.webhook_id: WebhookTarget(r.url, r.secret) for r in rows}


async def reminders_due(conn: AsyncConnection, now: datetime, limit: int) -> list[Any]:
    r = reminders
    return list(
        (
            await conn.execute(
                sa.select(r)
                .where(r.c.status == PENDING, r.c.due_at <= now)
                .order_by(r.c.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def schedule(
    conn: AsyncConnection,
    *,
    series: str,
    reminder: domain.Reminder,
    deadline: datetime,
    user_id: str,
    position_id: str,
) -> None:
    """Adds a reminder to the schedule; the same (series, kind, due time) is scheduled once."""
    await conn.execute(
        pg_insert(reminders)
        .values(
            reminder_id=uuid.uuid5(
                uuid.NAMESPACE_URL, f"{series}|{reminder.kind}|{reminder.due_at.isoformat()}"
            ),
            series=series,
            kind=reminder.kind,
            due_at=reminder.due_at,
            deadline=deadline,
            escalate=reminder.escalate,
            user_id=user_id,
            position_id=position_id,
            status=PENDING,
        )
        .on_conflict_do_nothing()
    )


async def cancel_series(
    conn: AsyncConnection, series: str, *, due_before: datetime | None = None
) -> int:
    """Ends a series' pending reminders (those due before `due_before`, if given)."""
    r = reminders
    query = r.update().where(r.c.series == series, r.c.status == PENDING)
    if due_before is not None:
        query = query.where(r.c.due_at < due_before)
    result = await conn.execute(query.values(status="cancelled"))
    return int(result.rowcount or 0)


async def pending_in_series(conn: AsyncConnection, series: str, kind: str) -> list[Any]:
    r = reminders
    query = sa.select(r).where(r.c.series == series, r.c.kind == kind, r.c.status == PENDING)
    return list((await conn.execute(query.with_for_update())).all())


async def mark_fired(conn: AsyncConnection, reminder_id: uuid.UUID, now: datetime) -> None:
    r = reminders
    await conn.execute(
        r.update().where(r.c.reminder_id == reminder_id).values(status="fired", fired_at=now)
    )


async def position_unit(conn: AsyncConnection, position_id: str) -> str | None:
    """The unit of a position, held or not any more."""
    p = directory_t.positions
    return await conn.scalar(sa.select(p.c.unit_id).where(p.c.position_id == position_id))


async def unpark(
    conn: AsyncConnection, delivery_ids: Sequence[uuid.UUID], now: datetime
) -> list[uuid.UUID]:
    """NT07: parked deliveries (the named ones, or all) go back to pending, due now."""
    d = deliveries
    query = d.update().where(
        d.c.status == PARKED, d.c.recipient_id.not_like(f"{domain.WAITING_PREFIX}%")
    )
    if delivery_ids:
        query = query.where(d.c.delivery_id.in_(list(delivery_ids)))
    result = await conn.execute(
        query.values(status=PENDING, attempts=0, next_attempt_at=now).returning(d.c.delivery_id)
    )
    return sorted(result.scalars().all())


# --- preferences and webhooks --------------------------------------------------------------


async def set_preferences(
    conn: AsyncConnection, user_id: str, channels: Sequence[str], now: datetime
) -> None:
    stmt = pg_insert(preferences).values(user_id=user_id, channels=list(channels), updated_at=now)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[preferences.c.user_id],
            set_={"channels": stmt.excluded.channels, "updated_at": stmt.excluded.updated_at},
        )
    )


async def webhook_owner(conn: AsyncConnection, webhook_id: str) -> str | None:
    """Whom a webhook id belongs to, registered now or removed (None: nobody yet)."""
    w = webhooks
    return await conn.scalar(
        sa.select(w.c.owner_id).where(w.c.webhook_id == webhook_id).with_for_update()
    )


async def upsert_webhook(
    conn: AsyncConnection,
    webhook_id: str,
    url: str,
    secret: str,
    event_types: Sequence[str],
    now: datetime,
    owner_id: str,
) -> bool:
    """Registers the webhook for `owner_id`, or replaces their registration; False (nothing
    written) when the id belongs to someone else (TR06)."""
    stmt = pg_insert(webhooks).values(
        webhook_id=webhook_id,
        url=url,
        secret=secret,
        event_types=list(event_types),
        registered_at=now,
        owner_id=owner_id,
        removed_at=None,
    )
    w = webhooks
    result = await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[w.c.webhook_id],
            set_={
                k: stmt.excluded[k]
                for k in ("url", "secret", "event_types", "registered_at", "owner_id", "removed_at")
            },
            where=sa.or_(w.c.owner_id.is_(None), w.c.owner_id == owner_id),
        ).returning(w.c.webhook_id)
    )
    return result.first() is not None


async def remove_webhook(conn: AsyncConnection, webhook_id: str, now: datetime) -> None:
    """TR06: the registration ends (its secret is forgotten); the row stays, so the id stays
    its owner's."""
    w = webhooks
    await conn.execute(
        w.update()
        .where(w.c.webhook_id == webhook_id, w.c.removed_at.is_(None))
        .values(removed_at=now, secret="")
    )


async def list_webhooks(conn: AsyncConnection, limit: int) -> list[Any]:
    """The registrations without their secrets, for integration administrators."""
    w = webhooks
    query = (
        sa.select(
            w.c.webhook_id,
            w.c.url,
            w.c.event_types,
            w.c.owner_id,
            w.c.registered_at,
            w.c.removed_at,
        )
        .order_by(w.c.webhook_id)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())
