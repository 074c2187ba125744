from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import Timestamps, UTCDateTime
from .tenant import Tenant


class User(Timestamps, db.Model):
    """A tenant owner, or a platform admin when ``tenant_id`` is empty."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Part of every portal session cookie; bumping it on logout or password reset makes every
    # earlier cookie of this user worthless (signed cookies cannot be revoked otherwise).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    tenant: Mapped[Tenant | None] = relationship()

    @property
    def is_platform_admin(self) -> bool:
        return self.tenant_id is None

    def __repr__(self) -> str:
        return f"<User id={self.id} tenant_id={self.tenant_id}>"


class PasswordResetToken(db.Model):
    """A single-use reset token; only its SHA-256 is stored."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
