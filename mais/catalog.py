"""The catalog: segments, packages, add-ons and blackout dates of one tenant."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from .errors import Conflict, DomainError, NotFound
from .extensions import db
from .models import AddOn, Blackout, Package, Segment, Tenant
from .sanitize import sanitize_html
from .tenancy import tenant_operation


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80] or "package"


def _require_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise DomainError("Enter a title.", field="title")
    if len(title) > 200:
        raise DomainError("Keep the title under 200 characters.", field="title")
    return title


def _require_price(price_cents: int) -> int:
    if not isinstance(price_cents, int) or price_cents < 0:
        raise DomainError("Enter a price of zero or more.", field="price")
    return price_cents


@tenant_operation
def create_segment(tenant: Tenant, title: str, sort_order: int | None = None) -> Segment:
    if sort_order is None:
        sort_order = (db.session.scalar(select(func.max(Segment.sort_order))) or 0) + 1
    segment = Segment(tenant_id=tenant.id, title=_require_title(title), sort_order=sort_order)
    db.session.add(segment)
    db.session.flush()
    return segment


@tenant_operation
def create_addon(tenant: Tenant, title: str, price_cents: int, *, is_active: bool = True) -> AddOn:
    sort_order = (db.session.scalar(select(func.max(AddOn.sort_order))) or 0) + 1
    addon = AddOn(
        tenant_id=tenant.id,
        title=_require_title(title),
        price_cents=_require_price(price_cents),
        is_active=is_active,
        sort_order=sort_order,
    )
    db.session.add(addon)
    db.session.flush()
    return addon


@tenant_operation
def create_package(
    tenant: Tenant,
    title: str,
    price_cents: int,
    *,
    slug: str | None = None,
    description_html: str = "",
    segment: Segment | None = None,
    addons: list[AddOn] | None = None,
    is_active: bool = True,
) -> Package:
    title = _require_title(title)
    slug = slugify(slug or title)
    if db.session.scalar(select(func.count()).where(Package.slug == slug)):
        raise Conflict("Another package already uses that address; change the slug.", field="slug")
    sort_order = (db.session.scalar(select(func.max(Package.sort_order))) or 0) + 1
    package = Package(
        tenant_id=tenant.id,
        title=title,
        slug=slug,
        price_cents=_require_price(price_cents),
        description_html=sanitize_html(description_html),
        segment_id=segment.id if segment else None,
        is_active=is_active,
        sort_order=sort_order,
    )
    package.addons = list(addons or [])
    db.session.add(package)
    db.session.flush()
    return package


@tenant_operation
def add_blackout(tenant: Tenant, on_date: date, reason: str = "") -> Blackout:
    exists = db.session.scalar(select(func.count()).where(Blackout.on_date == on_date))
    if exists:
        raise Conflict(f"{on_date:%B %-d, %Y} is already blocked.", field="on_date")
    blackout = Blackout(tenant_id=tenant.id, on_date=on_date, reason=reason.strip()[:200])
    db.session.add(blackout)
    db.session.flush()
    return blackout


@dataclass(frozen=True)
class PhotoView:
    id: int
    storage_key: str
    thumbnail_key: str
    alt_text: str


@dataclass(frozen=True)
class AddOnView:
    id: int
    title: str
    price_cents: int


@dataclass(frozen=True)
class PackageView:
    """A package as couples and integrators see it: plain, immutable data that can be cached."""

    id: int
    slug: str
    title: str
    description_html: str
    price_cents: int
    currency: str
    segment_id: int | None
    segment_title: str | None
    photos: tuple[PhotoView, ...]
    addons: tuple[AddOnView, ...]


@dataclass(frozen=True)
class SectionView:
    title: str | None
    packages: tuple[PackageView, ...]


def _package_view(tenant: Tenant, package: Package) -> PackageView:
    return PackageView(
        id=package.id,
        slug=package.slug,
        title=package.title,
        description_html=package.description_html,
        price_cents=package.price_cents,
        currency=tenant.currency,
        segment_id=package.segment_id,
        segment_title=package.segment.title if package.segment else None,
        photos=tuple(
            PhotoView(p.id, p.storage_key, p.thumbnail_key, p.alt_text) for p in package.photos
        ),
        addons=tuple(
            AddOnView(a.id, a.title, a.price_cents) for a in package.addons if a.is_active
        ),
    )


def _active_packages_query():  # noqa: ANN202 - a Select of Package
    return (
        select(Package)
        .where(Package.is_active.is_(True))
        .options(
            selectinload(Package.segment),
            selectinload(Package.photos),
            selectinload(Package.addons),
        )
        .order_by(Package.sort_order, Package.id)
    )


@tenant_operation
def list_active_packages(tenant: Tenant) -> list[PackageView]:
    """Active packages with their segment, photos and active add-ons, in a constant number of
    queries whatever the catalog size."""
    return [_package_view(tenant, p) for p in db.session.scalars(_active_packages_query())]


@tenant_operation
def catalog_sections(tenant: Tenant) -> list[SectionView]:
    """Active packages grouped by segment in the segments' order; unsegmented ones last."""
    packages = list_active_packages(tenant)
    segments = db.session.scalars(select(Segment).order_by(Segment.sort_order, Segment.id))
    sections = [
        SectionView(seg.title, tuple(p for p in packages if p.segment_id == seg.id))
        for seg in segments
    ]
    loose = tuple(p for p in packages if p.segment_id is None)
    if loose:
        sections.append(SectionView(None, loose))
    return [s for s in sections if s.packages]


@tenant_operation
def get_active_package(tenant: Tenant, slug: str) -> PackageView:
    package = db.session.scalar(_active_packages_query().where(Package.slug == slug))
    if package is None:
        raise NotFound("That package is not offered.")
    return _package_view(tenant, package)
