"""allocation: persons, work items, work history, outbox and inbox

Revision ID: allocation_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.shared.plumbing_tables import create_in_migration

revision = "allocation_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "allocation"


def upgrade() -> None:
    create_in_migration(SCHEMA)
    op.create_table(
        "persons",
        sa.Column("person_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("area", sa.Text),
        schema=SCHEMA,
    )
    op.create_table(
        "work_items",
        sa.Column("work_item_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("person_id", sa.Text, nullable=False, index=True),
        sa.Column("step_type", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("owner_kind", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Text, nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("notes", JSONB, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_work_items_owner", "work_items", ["owner_kind", "owner_id", "state"], schema=SCHEMA
    )
    op.create_table(
        "work_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("work_item_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("person_id", sa.Text, nullable=False, index=True),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("actor_user_id", sa.Text),
        sa.Column("from_owner", sa.Text),
        sa.Column("to_owner", sa.Text),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("work_history", "work_items", "persons", "inbox", "outbox"):
        op.drop_table(table, schema=SCHEMA)
