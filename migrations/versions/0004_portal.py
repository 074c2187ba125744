"""portal schema changes

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("ical_busy_dates", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("ical_fetched_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("ical_fetched_at")
        batch.drop_column("ical_busy_dates")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
