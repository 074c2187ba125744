"""external calendars: tenant time zone and conditional sync state

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC")
        )
        batch.alter_column(
            "ical_fetched_at",
            new_column_name="ical_sync_attempted_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=True,
        )
        batch.add_column(sa.Column("ical_synced_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ical_busy_through", sa.Date(), nullable=True))
        batch.add_column(sa.Column("ical_etag", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("ical_last_modified", sa.String(length=100), nullable=True))


def downgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("ical_last_modified")
        batch.drop_column("ical_etag")
        batch.drop_column("ical_busy_through")
        batch.drop_column("ical_synced_at")
        batch.alter_column(
            "ical_sync_attempted_at",
            new_column_name="ical_fetched_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=True,
        )
        batch.drop_column("time_zone")
