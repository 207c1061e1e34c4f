"""plumbing: parked outbox rows (TR08) and command outcomes, in every service's schema

The plumbing's own revisions form a branch of their own beside each service's chain, so every
service gets them without a migration of its own.

Revision ID: plumbing_0001
Revises:
"""

import sqlalchemy as sa
from alembic import context, op

from services.shared import plumbing_tables

revision = "plumbing_0001"
down_revision = None
branch_labels = ("plumbing",)
depends_on = None


def upgrade() -> None:
    schema = context.config.get_main_option("schema")
    metadata = sa.MetaData(schema=schema)
    tables = [plumbing_tables.parked_table(metadata), plumbing_tables.outcome_table(metadata)]
    metadata.create_all(bind=op.get_bind(), tables=tables)


def downgrade() -> None:
    schema = context.config.get_main_option("schema")
    op.drop_table("outcomes", schema=schema)
    op.drop_table("outbox_parked", schema=schema)
