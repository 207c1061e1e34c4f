"""notifications: webhook owners and removal (TR06)

Revision ID: notifications_0002
Revises: notifications_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0002"
down_revision = "notifications_0001"
branch_labels = None
depends_on = None
SCHEMA = "notifications"


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("owner_id", sa.Text), schema=SCHEMA)
    op.add_column("webhooks", sa.Column("removed_at", sa.DateTime(timezone=True)), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("webhooks", "removed_at", schema=SCHEMA)
    op.drop_column("webhooks", "owner_id", schema=SCHEMA)
