"""admin, API, cache and hardening schema changes

The admin area, the public API, the cache and the hardening read the existing tables only, so
this revision changes nothing; it keeps its place in the chain.

Revision ID: 0005
Revises: 0004
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    """Nothing to change."""


def downgrade():
    """Nothing to undo."""
