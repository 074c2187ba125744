"""refunds decided under the date lock are issued after its commit

Revision ID: 0009
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = {"date_holds": "ix_date_holds_refund_owed", "bookings": "ix_bookings_refund_owed"}


def upgrade():
    for table, index in TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("is_refund_owed", sa.Boolean(), nullable=False, server_default="0")
            )
        op.create_index(
            index,
            table,
            ["id"],
            postgresql_where=sa.text("is_refund_owed"),
            sqlite_where=sa.text("is_refund_owed"),
        )


def downgrade():
    for table, index in TABLES.items():
        op.drop_index(index, table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("is_refund_owed")
