"""web: sessions and pending sign-ins, shared by every instance (sealed with Fernet)

Revision ID: web_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA

revision = "web_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "web"


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.Text, primary_key=True),
        sa.Column("sealed", BYTEA, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("sessions_seen_at", "sessions", ["seen_at"], schema=SCHEMA)
    op.create_table(
        "sign_ins",
        sa.Column("state_hash", sa.Text, primary_key=True),
        sa.Column("sealed", BYTEA, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("sign_ins_started_at", "sign_ins", ["started_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("sign_ins", schema=SCHEMA)
    op.drop_table("sessions", schema=SCHEMA)
