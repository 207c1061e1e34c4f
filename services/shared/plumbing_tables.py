"""The outbox and inbox tables, one pair in each service's schema."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, UUID


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text),
        sa.Column("value", BYTEA, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


def inbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


def parked_table(metadata: sa.MetaData) -> sa.Table:
    """Outbox rows the relay could not publish (TR08: too big, or refused by the broker for
    good): kept with the reason until an operator replays or drops them."""
    return sa.Table(
        "outbox_parked",
        metadata,
        # The outbox row's own id, kept.
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text),
        sa.Column("value", BYTEA, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


def outcome_table(metadata: sa.MetaData) -> sa.Table:
    """The outcome of each applied command, by command id, for as long as the inbox remembers
    the command: a duplicate of the command announces the same outcome again."""
    return sa.Table(
        "outcomes",
        metadata,
        sa.Column("command_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("records", JSONB, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


def plumbing_tables(metadata: sa.MetaData) -> list[sa.Table]:
    """Every plumbing table of a service's schema, in its metadata."""
    return [
        outbox_table(metadata),
        inbox_table(metadata),
        parked_table(metadata),
        outcome_table(metadata),
    ]


def create_in_migration(schema: str) -> None:
    """Called from each service's first migration (the tables of plumbing's own later
    revisions, in services/shared/plumbing_migrations, are created there)."""
    metadata = sa.MetaData(schema=schema)
    tables = [outbox_table(metadata), inbox_table(metadata)]
    metadata.create_all(bind=op.get_bind(), tables=tables)
