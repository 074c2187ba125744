"""outbox: retry with backoff, dead messages

Each message gets ``next_attempt_at`` (existing rows: their ``created_at``), with a partial
index on pending rows for the relay's claim, and the status ``failed`` becomes ``dead``.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE outbox_messages SET next_attempt_at = created_at")
    op.execute("UPDATE outbox_messages SET status = 'dead' WHERE status = 'failed'")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.alter_column(
            "next_attempt_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            "ix_outbox_pending_due",
            ["next_attempt_at", "id"],
            unique=False,
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )


def downgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending_due", postgresql_where=PENDING, sqlite_where=PENDING)
        batch_op.drop_column("next_attempt_at")
    op.execute("UPDATE outbox_messages SET status = 'failed' WHERE status = 'dead'")
