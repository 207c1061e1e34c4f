"""access: directory, positions, grants, P30 records, releases, work projection, outbox, inbox

Revision ID: access_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.shared.plumbing_tables import create_in_migration

revision = "access_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "access"


def upgrade() -> None:
    create_in_migration(SCHEMA)
    op.create_table(
        "units",
        sa.Column("unit_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("parent_id", sa.Text),
        sa.Column("code", sa.Text),
        sa.Column("hopper_id", sa.Text),
        sa.Column("functionally_unique", sa.Boolean, nullable=False, server_default="false"),
        schema=SCHEMA,
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("line_manager_id", sa.Text),
        sa.Column("security_clearance", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("current_position_id", sa.Text),
        schema=SCHEMA,
    )
    op.create_table(
        "positions",
        sa.Column("position_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False, index=True),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("release_failed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_table(
        "grants",
        sa.Column("grant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False, index=True),
        sa.Column("position_id", sa.Text, nullable=False, index=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("p30_id", UUID(as_uuid=True), nullable=False),
        sa.Column("emergency", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("review_due_at", sa.DateTime(timezone=True)),
        sa.Column("review_due_flagged", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("review_overdue_flagged", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("ended_by_p30_id", UUID(as_uuid=True)),
        schema=SCHEMA,
    )
    op.create_table(
        "p30s",
        sa.Column("p30_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False, index=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("unit_ids", JSONB, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("approved_by", sa.Text),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("discussion_held", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("discussed_with", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("emergency", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("deadline", sa.DateTime(timezone=True)),
        sa.Column("overdue_flagged", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("warnings", JSONB, nullable=False, server_default="[]"),
        sa.Column("failure_reason", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("closed_by", sa.Text),
        schema=SCHEMA,
    )
    op.create_table(
        "releases",
        sa.Column("release_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("position_id", sa.Text, nullable=False, index=True),
        sa.Column("grant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("p30_id", UUID(as_uuid=True), nullable=False),
        sa.Column("successor_position_id", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("moved", JSONB, nullable=False, server_default="[]"),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_table(
        "work_items",
        sa.Column("work_item_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("step_type", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("owner_kind", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_access_work_owner", "work_items", ["owner_kind", "owner_id"], schema=SCHEMA)


def downgrade() -> None:
    tables = ("work_items", "releases", "p30s", "grants", "positions", "users", "units")
    for table in (*tables, "inbox", "outbox"):
        op.drop_table(table, schema=SCHEMA)
