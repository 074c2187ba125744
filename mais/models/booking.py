from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..tenancy import TenantOwned
from .base import Timestamps, UTCDateTime
from .catalog import AddOn, Package


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class HoldStatus(enum.StrEnum):
    ACTIVE = "active"  # the couple is paying
    CONVERTED = "converted"  # paid and became a booking
    RELEASED = "released"  # checkout expired or abandoned
    REFUNDED = "refunded"  # paid after losing the date; refunded


class BookingStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


# The rows that hold a date: the predicate of the partial indexes on confirmed bookings, and of
# the ON CONFLICT target that names the unique one (PostgreSQL infers an index from it only when
# it is written as the index's own).
CONFIRMED_PREDICATE = f"status = '{BookingStatus.CONFIRMED.value}'"


class DateHold(TenantOwned, Timestamps, db.Model):
    """A couple's place in line while paying. Its id is the payment idempotency key."""

    __tablename__ = "date_holds"
    __table_args__ = (
        Index("ix_date_holds_tenant_date", "tenant_id", "on_date", "status"),
        # Releasing expired holds: the active ones only, soonest expiry first.
        Index(
            "ix_date_holds_active_expires",
            "expires_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index(
            "ix_date_holds_refund_owed",
            "id",
            postgresql_where=text("is_refund_owed"),
            sqlite_where=text("is_refund_owed"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    on_date: Mapped[date] = mapped_column(Date)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="RESTRICT"))
    # [{"addon_id": 3, "title": "Bouquet", "price_cents": 9000}, ...] priced when the hold was made.
    addon_lines: Mapped[list[dict]] = mapped_column(JSON, default=list)
    package_price_cents: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)
    commission_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    commission_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    couple_name: Mapped[str] = mapped_column(String(200))
    partner_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(40), default="")
    # The page the couple booked from, already checked against the tenant's allowed origins.
    return_url: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[HoldStatus] = mapped_column(_enum(HoldStatus), default=HoldStatus.ACTIVE)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    refund_id: Mapped[str | None] = mapped_column(String(255))
    # Decided under the date lock, issued after its commit (mais.refunds); true until the
    # provider has answered with ``refund_id``.
    is_refund_owed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    package: Mapped[Package] = relationship()

    def __repr__(self) -> str:
        return f"<DateHold id={self.id} tenant_id={self.tenant_id} on_date={self.on_date}>"


class Booking(TenantOwned, Timestamps, db.Model):
    __tablename__ = "bookings"
    __table_args__ = (
        # One confirmed event per tenant and date: the last line of defence behind the date lock.
        Index(
            "uq_bookings_tenant_date_confirmed",
            "tenant_id",
            "on_date",
            unique=True,
            postgresql_where=text(CONFIRMED_PREDICATE),
            sqlite_where=text(CONFIRMED_PREDICATE),
        ),
        Index("ix_bookings_tenant_status_date", "tenant_id", "status", "on_date"),
        Index("ix_bookings_tenant_created", "tenant_id", "created_at"),
        # The owner's cancelled/refunded list, newest date first.
        Index(
            "ix_bookings_tenant_closed_date",
            "tenant_id",
            "on_date",
            "id",
            postgresql_where=text("status <> 'confirmed'"),
            sqlite_where=text("status <> 'confirmed'"),
        ),
        # The admin's per-tenant figures, read from the index alone.
        Index(
            "ix_bookings_confirmed_figures",
            "tenant_id",
            postgresql_include=["total_cents", "commission_cents"],
            postgresql_where=text(CONFIRMED_PREDICATE),
            sqlite_where=text(CONFIRMED_PREDICATE),
        ),
        Index(
            "ix_bookings_refund_owed",
            "id",
            postgresql_where=text("is_refund_owed"),
            sqlite_where=text("is_refund_owed"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    hold_id: Mapped[str | None] = mapped_column(ForeignKey("date_holds.id"), unique=True)
    on_date: Mapped[date] = mapped_column(Date)
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="RESTRICT"))
    package_title: Mapped[str] = mapped_column(String(200))
    package_price_cents: Mapped[int] = mapped_column(Integer)
    couple_name: Mapped[str] = mapped_column(String(200))
    partner_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(40), default="")
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    commission_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    commission_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[BookingStatus] = mapped_column(
        _enum(BookingStatus), default=BookingStatus.CONFIRMED
    )
    checkout_session_id: Mapped[str | None] = mapped_column(String(255))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    refund_id: Mapped[str | None] = mapped_column(String(255))
    # Decided under the date lock, issued after its commit (mais.refunds); true until the
    # provider has answered with ``refund_id``.
    is_refund_owed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    package: Mapped[Package | None] = relationship()
    addons: Mapped[list[BookingAddOn]] = relationship(
        back_populates="booking", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Booking id={self.id} tenant_id={self.tenant_id} on_date={self.on_date}>"


class BookingAddOn(TenantOwned, db.Model):
    """An add-on as it was priced when the couple paid."""

    __tablename__ = "booking_addons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    addon_id: Mapped[int | None] = mapped_column(ForeignKey("addons.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(Integer)

    booking: Mapped[Booking] = relationship(back_populates="addons")
    addon: Mapped[AddOn | None] = relationship()
