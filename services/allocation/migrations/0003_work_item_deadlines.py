"""allocation: work item due dates and deadline flags (DL01, DL02)

Revision ID: allocation_0003
Revises: allocation_0002
"""

import sqlalchemy as sa
from alembic import op

from contracts.allocation import StepType
from services.allocation.deadlines import due_at_for

revision = "allocation_0003"
down_revision = "allocation_0002"
branch_labels = None
depends_on = None
SCHEMA = "allocation"


def upgrade() -> None:
    op.add_column("work_items", sa.Column("due_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column(
        "work_items",
        sa.Column("deadline_flag", sa.Text, nullable=False, server_default="none"),
        schema=SCHEMA,
    )
    # DL01: work made before due dates existed is due as if the policy had applied at creation.
    items = sa.table(
        "work_items",
        sa.column("work_item_id"),
        sa.column("step_type"),
        sa.column("created_at"),
        sa.column("due_at"),
        schema=SCHEMA,
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(items.c.work_item_id, items.c.step_type, items.c.created_at)):
        conn.execute(
            items.update()
            .where(items.c.work_item_id == row.work_item_id)
            .values(due_at=due_at_for(StepType(row.step_type), row.created_at))
        )
    # The sweep (DL02) reads only unfinished work not yet flagged overdue, by due date.
    op.create_index(
        "ix_work_items_deadline",
        "work_items",
        ["due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("state <> 'finished' AND deadline_flag <> 'overdue'"),
    )


def downgrade() -> None:
    op.drop_index("ix_work_items_deadline", table_name="work_items", schema=SCHEMA)
    op.drop_column("work_items", "deadline_flag", schema=SCHEMA)
    op.drop_column("work_items", "due_at", schema=SCHEMA)
