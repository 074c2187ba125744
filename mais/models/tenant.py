from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import Timestamps, UTCDateTime

DEFAULT_COMMISSION_PERCENT = Decimal("12.5")


class OnboardingState(enum.StrEnum):
    NOT_STARTED = "not_started"
    PENDING = "pending"
    COMPLETE = "complete"


class Tenant(Timestamps, db.Model):
    __tablename__ = "tenants"
    __table_args__ = (
        # The admin's tenant list, newest first.
        Index("ix_tenants_created", "created_at", "id"),
        # The admin's search by any part of the slug or name (PostgreSQL's pg_trgm; the
        # migration creates these on PostgreSQL only).
        Index(
            "ix_tenants_slug_trgm",
            "slug",
            postgresql_using="gin",
            postgresql_ops={"slug": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_tenants_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    commission_percent: Mapped[Decimal] = mapped_column(
        Numeric(5, 2), default=DEFAULT_COMMISSION_PERCENT
    )
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    stripe_account_id: Mapped[str | None] = mapped_column(String(255))
    onboarding_state: Mapped[OnboardingState] = mapped_column(
        Enum(
            OnboardingState,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=OnboardingState.NOT_STARTED,
    )
    brand_primary_color: Mapped[str] = mapped_column(String(7), default="#7c3aed")
    brand_accent_color: Mapped[str] = mapped_column(String(7), default="#f59e0b")
    logo_key: Mapped[str | None] = mapped_column(String(255))
    # Exact origins such as "https://studio.example:8443", checked before the widget may be framed.
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    return_url: Mapped[str | None] = mapped_column(String(2000))
    public_key: Mapped[str] = mapped_column(String(120), unique=True)
    secret_key_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # A short, non-secret tail of the secret key so owners can tell keys apart after rotation.
    secret_key_hint: Mapped[str] = mapped_column(String(8))
    # IANA name; the tenant's days (today, past, the horizon, busy days) are days in this zone.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    ical_import_url: Mapped[str | None] = mapped_column(String(2000))
    # The last sync's error, shown to the owner; None after a successful sync.
    ical_import_error: Mapped[str | None] = mapped_column(Text)
    ical_export_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Busy days of the imported calendar ("YYYY-MM-DD", tenant-local), from the last successful
    # sync; they cover the days up to ical_busy_through.
    ical_busy_dates: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    ical_busy_through: Mapped[date | None] = mapped_column(Date)
    # Validators of the last full answer, sent back so that an unchanged feed is not re-read.
    ical_etag: Mapped[str | None] = mapped_column(String(1000))
    ical_last_modified: Mapped[str | None] = mapped_column(String(100))
    ical_sync_attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ical_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    booking_horizon_days: Mapped[int] = mapped_column(Integer, default=730)

    def __repr__(self) -> str:
        return f"<Tenant id={self.id} slug={self.slug!r}>"
