"""access: the audit of directory changes (TR03): who, when, what, before and after

Revision ID: access_0002
Revises: access_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "access_0002"
down_revision = "access_0001"
branch_labels = None
depends_on = None
SCHEMA = "access"


def upgrade() -> None:
    op.create_table(
        "directory_changes",
        sa.Column("change_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("command_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("authority", JSONB, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB, nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_access_directory_changes_entity",
        "directory_changes",
        ["entity", "entity_id"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("directory_changes", schema=SCHEMA)
