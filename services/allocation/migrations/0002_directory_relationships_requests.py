"""allocation: directory projection, worker relationships, incoming requests

Revision ID: allocation_0002
Revises: allocation_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.shared.directory import create_in_migration

revision = "allocation_0002"
down_revision = "allocation_0001"
branch_labels = None
depends_on = None
SCHEMA = "allocation"


def upgrade() -> None:
    create_in_migration(SCHEMA)
    op.create_table(
        "worker_relationships",
        sa.Column("relationship_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("person_id", sa.Text, nullable=False, index=True),
        sa.Column("worker_position_id", sa.Text, nullable=False),
        sa.Column("worker_user_id", sa.Text, nullable=False),
        sa.Column("relationship_type", sa.Text, nullable=False),
        sa.Column("from_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column("recorded_by", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "incoming_requests",
        sa.Column("request_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("step_id", UUID(as_uuid=True), nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("team", sa.Text, nullable=False, index=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("sent_by_position_id", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_persons_name_lower", "persons", [sa.text("lower(name)")], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_persons_name_lower", table_name="persons", schema=SCHEMA)
    for table in ("incoming_requests", "worker_relationships", "dir_positions", "dir_users"):
        op.drop_table(table, schema=SCHEMA)
    op.drop_table("dir_units", schema=SCHEMA)
