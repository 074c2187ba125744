from __future__ import annotations

from datetime import date

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..tenancy import TenantOwned
from .base import Timestamps

package_addons = Table(
    "package_addons",
    db.metadata,
    Column("package_id", ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True),
    Column("addon_id", ForeignKey("addons.id", ondelete="CASCADE"), primary_key=True),
)


class Segment(TenantOwned, Timestamps, db.Model):
    """A section of a tenant's catalog ("Elopements", "Full weddings")."""

    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_tenant_order", "tenant_id", "sort_order"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<Segment id={self.id} tenant_id={self.tenant_id}>"


class AddOn(TenantOwned, Timestamps, db.Model):
    __tablename__ = "addons"
    __table_args__ = (Index("ix_addons_tenant_order", "tenant_id", "sort_order"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<AddOn id={self.id} tenant_id={self.tenant_id}>"


class Package(TenantOwned, Timestamps, db.Model):
    __tablename__ = "packages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug", name="uq_packages_tenant_slug"),
        Index("ix_packages_tenant_order", "tenant_id", "is_active", "sort_order"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="SET NULL"), index=True
    )
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    # Sanitized with nh3 on every write; rendered as trusted HTML.
    description_html: Mapped[str] = mapped_column(Text, default="")
    price_cents: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    segment: Mapped[Segment | None] = relationship()
    addons: Mapped[list[AddOn]] = relationship(secondary=package_addons, order_by=AddOn.sort_order)
    photos: Mapped[list[PackagePhoto]] = relationship(
        back_populates="package",
        order_by="PackagePhoto.sort_order",
        cascade="all, delete-orphan",
    )

    def __repr__(self) -> str:
        return f"<Package id={self.id} tenant_id={self.tenant_id} slug={self.slug!r}>"


class PackagePhoto(TenantOwned, Timestamps, db.Model):
    __tablename__ = "package_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), index=True
    )
    storage_key: Mapped[str] = mapped_column(String(255))
    thumbnail_key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(50))
    alt_text: Mapped[str] = mapped_column(String(300), default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    package: Mapped[Package] = relationship(back_populates="photos")


class Blackout(TenantOwned, Timestamps, db.Model):
    """A date the tenant cannot work."""

    __tablename__ = "blackouts"
    __table_args__ = (UniqueConstraint("tenant_id", "on_date", name="uq_blackouts_tenant_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    on_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), default="")

    def __repr__(self) -> str:
        return f"<Blackout id={self.id} tenant_id={self.tenant_id} on_date={self.on_date}>"
