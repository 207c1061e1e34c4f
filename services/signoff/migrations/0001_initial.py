"""signoff: steps, next actions, requests, directory projection, outbox and inbox

Revision ID: signoff_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.shared import directory, plumbing_tables

revision = "signoff_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "signoff"


def upgrade() -> None:
    plumbing_tables.create_in_migration(SCHEMA)
    directory.create_in_migration(SCHEMA)
    op.create_table(
        "steps",
        sa.Column("step_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("person_id", sa.Text, nullable=False, index=True),
        sa.Column("person_name", sa.Text),
        sa.Column("step_type", sa.Text, nullable=False),
        sa.Column("owner_kind", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Text, nullable=False),
        sa.Column("answers", JSONB, nullable=False, server_default="{}"),
        sa.Column("finished", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("finished_by_position_id", sa.Text),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "next_actions",
        sa.Column("action_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("step_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("action_type", sa.Text, nullable=False),
        sa.Column("assignee_kind", sa.Text, nullable=False),
        sa.Column("assignee_id", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("added_by_position_id", sa.Text),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "requests",
        sa.Column("request_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("step_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("sent_by_position_id", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_by_position_id", sa.Text),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text),
        schema=SCHEMA,
    )
    op.create_index("ix_requests_team_state", "requests", ["team", "state"], schema=SCHEMA)


def downgrade() -> None:
    for table in (
        "requests",
        "next_actions",
        "steps",
        "dir_positions",
        "dir_users",
        "dir_units",
        "inbox",
        "outbox",
    ):
        op.drop_table(table, schema=SCHEMA)
