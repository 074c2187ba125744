from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import Timestamps, UTCDateTime, utcnow


class OutboxStatus(enum.StrEnum):
    # Waiting for its next attempt at ``next_attempt_at`` (its first one, or a retry).
    PENDING = "pending"
    SENT = "sent"
    # Given up: refused for good, or still undeliverable after the give-up window. Only an
    # operator's retry sends it again. (Called "failed" before retries had a window.)
    DEAD = "dead"


class OutboxMessage(Timestamps, db.Model):
    """An email to send, written in the same transaction as the change that caused it.

    Platform-level (the relay serves every tenant); ``tenant_id`` is kept for the admin's view.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_status_created", "status", "created_at"),
        # The relay's claim: pending rows due now, soonest first. Sent rows (nearly all of
        # them) stay out of the index.
        Index(
            "ix_outbox_pending_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # The admin's dead-letter list, newest first.
        Index(
            "ix_outbox_dead",
            "id",
            postgresql_where=text("status = 'dead'"),
            sqlite_where=text("status = 'dead'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL"), index=True
    )
    template: Mapped[str] = mapped_column(String(80))
    to_email: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(
            OutboxStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=OutboxStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<OutboxMessage id={self.id} {self.template} {self.status}>"
