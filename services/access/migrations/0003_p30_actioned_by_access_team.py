"""access: P30s actioned by the access team (AC20), emergency requests answered with a time
scale (AC21), overdue reviews removed by policy (AC22)

Revision ID: access_0003
Revises: access_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "access_0003"
down_revision = "access_0002"
branch_labels = None
depends_on = None
SCHEMA = "access"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # AC20: who actioned (or refused) the P30 and when; what a removal P30 asks to remove.
    op.add_column("p30s", sa.Column("actioned_by", sa.Text), schema=SCHEMA)
    op.add_column("p30s", sa.Column("actioned_at", TS), schema=SCHEMA)
    op.add_column("p30s", sa.Column("refused_reason", sa.Text), schema=SCHEMA)
    op.add_column("p30s", sa.Column("position_id", sa.Text), schema=SCHEMA)
    op.add_column("p30s", sa.Column("grant_id", UUID(as_uuid=True)), schema=SCHEMA)
    op.add_column("p30s", sa.Column("successor_position_id", sa.Text), schema=SCHEMA)
    # AC21: the absent TL/SM and the access team's time scale for a scheduled grant.
    op.add_column("p30s", sa.Column("absent_user_id", sa.Text), schema=SCHEMA)
    op.add_column("p30s", sa.Column("scheduled_for", TS), schema=SCHEMA)
    op.create_index("ix_access_p30s_state", "p30s", ["state"], schema=SCHEMA)
    # AC22: the removal P30 started for a lapsed review (once).
    op.add_column("grants", sa.Column("lapsed_p30_id", UUID(as_uuid=True)), schema=SCHEMA)
    # Rows written before the access team actioned P30s were granted by their requester.
    op.execute(
        "UPDATE access.p30s SET actioned_by = requested_by, actioned_at = recorded_at "
        "WHERE state IN ('complete', 'pending') AND actioned_by IS NULL"
    )


def downgrade() -> None:
    op.drop_column("grants", "lapsed_p30_id", schema=SCHEMA)
    op.drop_index("ix_access_p30s_state", "p30s", schema=SCHEMA)
    for column in (
        "scheduled_for",
        "absent_user_id",
        "successor_position_id",
        "grant_id",
        "position_id",
        "refused_reason",
        "actioned_at",
        "actioned_by",
    ):
        op.drop_column("p30s", column, schema=SCHEMA)
