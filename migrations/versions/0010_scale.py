"""indexes that keep the operators' and owners' pages and the maintenance jobs flat at scale

Each index matches one query's filter and order (partial where the filter is fixed), so that
the query reads what it shows and no more, however many tenants, bookings, events and messages
there are. Trigram indexes for the admin's tenant search are PostgreSQL only (pg_trgm); SQLite
keeps a plain LIKE.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CONFIRMED = sa.text("status = 'confirmed'")
NOT_CONFIRMED = sa.text("status <> 'confirmed'")
ACTIVE = sa.text("status = 'active'")
FAILED = sa.text("status = 'failed'")
DEAD = sa.text("status = 'dead'")

TRIGRAM = {"ix_tenants_slug_trgm": "slug", "ix_tenants_name_trgm": "name"}


def upgrade():
    with op.batch_alter_table("bookings") as batch:
        # The owner's cancelled/refunded list, newest date first.
        batch.create_index(
            "ix_bookings_tenant_closed_date",
            ["tenant_id", "on_date", "id"],
            postgresql_where=NOT_CONFIRMED,
            sqlite_where=NOT_CONFIRMED,
        )
        # The admin's per-tenant figures, read from the index alone.
        batch.create_index(
            "ix_bookings_confirmed_figures",
            ["tenant_id"],
            postgresql_include=["total_cents", "commission_cents"],
            postgresql_where=CONFIRMED,
            sqlite_where=CONFIRMED,
        )
    with op.batch_alter_table("date_holds") as batch:
        # Releasing expired holds: the active ones only, soonest expiry first.
        batch.create_index(
            "ix_date_holds_active_expires",
            ["expires_at"],
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        )
    with op.batch_alter_table("webhook_events") as batch:
        # Archiving events older than 90 days.
        batch.create_index("ix_webhook_events_created", ["created_at", "id"])
        # The dead-letter list.
        batch.create_index(
            "ix_webhook_events_failed",
            ["created_at", "id"],
            postgresql_where=FAILED,
            sqlite_where=FAILED,
        )
    with op.batch_alter_table("outbox_messages") as batch:
        # The admin's dead-letter list, newest first.
        batch.create_index("ix_outbox_dead", ["id"], postgresql_where=DEAD, sqlite_where=DEAD)
    with op.batch_alter_table("tenants") as batch:
        # The admin's tenant list, newest first.
        batch.create_index("ix_tenants_created", ["created_at", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, column in TRIGRAM.items():
            op.create_index(
                name,
                "tenants",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM:
            op.drop_index(name, table_name="tenants")
        # The extension stays: other databases objects may use it, and it holds no data.
    with op.batch_alter_table("tenants") as batch:
        batch.drop_index("ix_tenants_created")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_index("ix_outbox_dead")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_index("ix_webhook_events_failed")
        batch.drop_index("ix_webhook_events_created")
    with op.batch_alter_table("date_holds") as batch:
        batch.drop_index("ix_date_holds_active_expires")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_index("ix_bookings_confirmed_figures")
        batch.drop_index("ix_bookings_tenant_closed_date")
