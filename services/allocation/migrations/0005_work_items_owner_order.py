"""allocation: an index for a queue's current work read one page at a time (AL04)

The team, worker and inbox workviews read an owner's incoming or incomplete work in creation
order, `limit` rows from an offset: (owner_kind, owner_id, state, created_at, work_item_id) serves
both the page and the counts by state without a sort over every row.

Revision ID: allocation_0005
Revises: allocation_0004
"""

from alembic import op

revision = "allocation_0005"
down_revision = "allocation_0004"
branch_labels = None
depends_on = None
SCHEMA = "allocation"


def upgrade() -> None:
    op.create_index(
        "ix_work_items_owner_state_created",
        "work_items",
        ["owner_kind", "owner_id", "state", "created_at", "work_item_id"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_work_items_owner_state_created", table_name="work_items", schema=SCHEMA)
