"""notifications: directory projection, preferences, webhooks, deliveries, reminders, outbox and
inbox

Revision ID: notifications_0001
Revises:
"""

from alembic import op

from services.notifications import store
from services.shared import directory, plumbing_tables

revision = "notifications_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "notifications"


def upgrade() -> None:
    plumbing_tables.create_in_migration(SCHEMA)
    directory.create_in_migration(SCHEMA)
    store.create_own_tables(op.get_bind(), SCHEMA)


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
