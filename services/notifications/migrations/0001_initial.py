"""notifications: directory projection, preferences, webhooks, deliveries, reminders, outbox and
inbox

Revision ID: notifications_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.shared import directory, plumbing_tables

revision = "notifications_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "notifications"


def upgrade() -> None:
    plumbing_tables.create_in_migration(SCHEMA)
    directory.create_in_migration(SCHEMA)
    op.create_table(
        "preferences",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("channels", ARRAY(sa.Text), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("event_types", ARRAY(sa.Text), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "deliveries",
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
        sa.UniqueConstraint(
            "source_id", "recipient_id", "channel", "kind", name="uq_deliveries_once"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"], schema=SCHEMA)
    op.create_index(
        "ix_deliveries_recipient",
        "deliveries",
        ["recipient_id", "channel", "created_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "reminders",
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
        schema=SCHEMA,
    )
    op.create_index("ix_reminders_series", "reminders", ["series"], schema=SCHEMA)
    op.create_index("ix_reminders_due", "reminders", ["status", "due_at"], schema=SCHEMA)


def downgrade() -> None:
    for table in (
        "reminders",
        "deliveries",
        "webhooks",
        "preferences",
        "dir_positions",
        "dir_users",
        "dir_units",
        "inbox",
        "outbox",
    ):
        op.drop_table(table, schema=SCHEMA)
