"""allocation: finished steps' content for the person's Documents (AL15)

Revision ID: allocation_0004
Revises: allocation_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "allocation_0004"
down_revision = "allocation_0003"
branch_labels = None
depends_on = None
SCHEMA = "allocation"


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("work_item_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("person_id", sa.Text, nullable=False, index=True),
        sa.Column("step_type", sa.Text, nullable=False),
        sa.Column("sections", JSONB, nullable=False),
        sa.Column("finished_by_position_id", sa.Text),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("documents", schema=SCHEMA)
