"""The catalog: segments, packages, add-ons and blackout dates of one tenant."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, select
from sqlalchemy.orm import selectinload

from . import media
from .audit import record_audit
from .cache import CATALOG, get_or_set, invalidate_availability, invalidate_catalog
from .errors import Conflict, DomainError, NotFound
from .extensions import db
from .models import (
    AddOn,
    Blackout,
    Booking,
    DateHold,
    Package,
    PackagePhoto,
    Segment,
    Tenant,
    User,
    package_addons,
)
from .sanitize import sanitize_html
from .tenancy import get_owned_or_404, tenant_operation
from .tenant_registry import local_today

MAX_BLACKOUT_RANGE_DAYS = 366


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


def _changed(tenant: Tenant, action: str, obj: Any, user: User | None, **details: Any) -> None:
    """Every catalog write is audited and drops the tenant's cached catalog (every entry of
    the tenant, under its old slugs and new alike)."""
    record_audit(tenant, action, action.split(".")[0], obj.id, user=user, details=details)
    # Flushed inside the scope, so that no later read autoflushes it outside.
    db.session.flush()
    invalidate_catalog(tenant)


@tenant_operation
def create_segment(
    tenant: Tenant, title: str, sort_order: int | None = None, *, user: User | None = None
) -> Segment:
    if sort_order is None:
        sort_order = (db.session.scalar(select(func.max(Segment.sort_order))) or 0) + 1
    segment = Segment(tenant_id=tenant.id, title=_require_title(title), sort_order=sort_order)
    db.session.add(segment)
    db.session.flush()
    _changed(tenant, "segment.create", segment, user, title=segment.title)
    return segment


@tenant_operation
def create_addon(
    tenant: Tenant,
    title: str,
    price_cents: int,
    *,
    is_active: bool = True,
    user: User | None = None,
) -> AddOn:
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
    _changed(tenant, "addon.create", addon, user, title=addon.title)
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
    user: User | None = None,
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
    _changed(tenant, "package.create", package, user, title=title)
    return package


@tenant_operation
def add_blackout(
    tenant: Tenant, on_date: date, reason: str = "", *, user: User | None = None
) -> Blackout:
    exists = db.session.scalar(select(func.count()).where(Blackout.on_date == on_date))
    if exists:
        raise Conflict(f"{on_date:%B %-d, %Y} is already blocked.", field="on_date")
    blackout = Blackout(tenant_id=tenant.id, on_date=on_date, reason=reason.strip()[:200])
    db.session.add(blackout)
    db.session.flush()
    record_audit(
        tenant,
        "blackout.create",
        "blackout",
        blackout.id,
        user=user,
        details={"on_date": on_date.isoformat(), "reason": blackout.reason},
    )
    db.session.flush()
    invalidate_availability(tenant)
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


# What couples are offered, for the catalog's reads here and the booking path's prebuilt
# statement (``mais.booking._SELECTION``) alike: an active package, with the add-ons linked to
# it (``package_addons``) that are active themselves.
PACKAGE_IS_OFFERED = Package.is_active.is_(True)
ADDON_IS_OFFERED = and_(AddOn.id == package_addons.c.addon_id, AddOn.is_active.is_(True))
# Add-ons are listed and priced in this order.
ADDON_ORDER = (AddOn.sort_order, AddOn.id)


def _offered_addons(package_ids: list[int]) -> dict[int, tuple[AddOnView, ...]]:
    """The offered add-ons of each package, in one query."""
    if not package_ids:
        return {}
    rows = db.session.execute(
        select(package_addons.c.package_id, AddOn.id, AddOn.title, AddOn.price_cents)
        .join_from(package_addons, AddOn, ADDON_IS_OFFERED)
        .where(package_addons.c.package_id.in_(package_ids))
        .order_by(*ADDON_ORDER)
    )
    offered: dict[int, list[AddOnView]] = {}
    for package_id, addon_id, title, price_cents in rows:
        offered.setdefault(package_id, []).append(AddOnView(addon_id, title, price_cents))
    return {package_id: tuple(addons) for package_id, addons in offered.items()}


def _package_views(tenant: Tenant, packages: list[Package]) -> list[PackageView]:
    addons = _offered_addons([package.id for package in packages])
    return [_package_view(tenant, package, addons.get(package.id, ())) for package in packages]


def _package_view(tenant: Tenant, package: Package, addons: tuple[AddOnView, ...]) -> PackageView:
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
        addons=addons,
    )


def _active_packages_query():  # noqa: ANN202 - a Select of Package
    return (
        select(Package)
        .where(PACKAGE_IS_OFFERED)
        .options(selectinload(Package.segment), selectinload(Package.photos))
        .order_by(Package.sort_order, Package.id)
    )


@tenant_operation
def list_active_packages(tenant: Tenant) -> list[PackageView]:
    """Active packages with their segment, photos and active add-ons, in a constant number of
    queries whatever the catalog size."""
    return get_or_set(
        tenant,
        CATALOG,
        ("packages",),
        lambda: _package_views(tenant, list(db.session.scalars(_active_packages_query()))),
    )


@tenant_operation
def catalog_sections(tenant: Tenant) -> list[SectionView]:
    """Active packages grouped by segment in the segments' order; unsegmented ones last."""
    return get_or_set(tenant, CATALOG, ("sections",), lambda: _build_sections(tenant))


def _build_sections(tenant: Tenant) -> list[SectionView]:
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
    def load() -> PackageView:
        package = db.session.scalar(_active_packages_query().where(Package.slug == slug))
        if package is None:
            raise NotFound("That package is not offered.")
        return _package_views(tenant, [package])[0]

    return get_or_set(tenant, CATALOG, ("package", slug), load)


# Writes used by the portal. Each loads its object through the tenant (another tenant's id is
# NotFound), validates, changes, audits and invalidates the cache.

M = TypeVar("M")


def _get(tenant: Tenant, model: type[M], object_id: int) -> M:
    return get_owned_or_404(db.session, tenant, model, object_id)


def _segment_or_none(tenant: Tenant, segment_id: int | None) -> Segment | None:
    if segment_id is None:
        return None
    try:
        return _get(tenant, Segment, segment_id)
    except NotFound:
        raise DomainError("Choose one of your segments.", field="segment") from None


@tenant_operation
def list_packages(tenant: Tenant) -> list[Package]:
    """Every package, active or not, in the catalog's order (for the owner)."""
    return list(
        db.session.scalars(
            select(Package)
            .options(selectinload(Package.segment), selectinload(Package.photos))
            .order_by(Package.sort_order, Package.id)
        )
    )


@tenant_operation
def list_addons(tenant: Tenant) -> list[AddOn]:
    return list(db.session.scalars(select(AddOn).order_by(AddOn.sort_order, AddOn.id)))


@tenant_operation
def list_segments(tenant: Tenant) -> list[Segment]:
    return list(db.session.scalars(select(Segment).order_by(Segment.sort_order, Segment.id)))


@tenant_operation
def get_package(tenant: Tenant, package_id: int) -> Package:
    return _get(tenant, Package, package_id)


@tenant_operation
def get_addon(tenant: Tenant, addon_id: int) -> AddOn:
    return _get(tenant, AddOn, addon_id)


@tenant_operation
def get_segment(tenant: Tenant, segment_id: int) -> Segment:
    return _get(tenant, Segment, segment_id)


@tenant_operation
def update_package(
    tenant: Tenant,
    package_id: int,
    *,
    title: str,
    price_cents: int,
    slug: str | None = None,
    description_html: str = "",
    segment_id: int | None = None,
    user: User | None = None,
) -> Package:
    package = _get(tenant, Package, package_id)
    old_slug = package.slug
    new_slug = slugify(slug or package.slug)
    if new_slug != old_slug and db.session.scalar(
        select(func.count()).where(Package.slug == new_slug, Package.id != package.id)
    ):
        raise Conflict("Another package already uses that address; change the slug.", field="slug")
    package.title = _require_title(title)
    package.price_cents = _require_price(price_cents)
    package.slug = new_slug
    package.description_html = sanitize_html(description_html)
    package.segment_id = segment.id if (segment := _segment_or_none(tenant, segment_id)) else None
    db.session.flush()
    _changed(
        tenant,
        "package.update",
        package,
        user,
        title=package.title,
        slug=new_slug,
        price_cents=package.price_cents,
    )
    return package


def _swap_with_neighbour(model: Any, obj: Any, direction: int) -> None:
    """Move ``obj`` one place up (direction -1) or down (+1) in its list."""
    ordered = list(db.session.scalars(select(model).order_by(model.sort_order, model.id)))
    index = ordered.index(obj)
    target = index + (1 if direction > 0 else -1)
    if not 0 <= target < len(ordered):
        return
    ordered[index], ordered[target] = ordered[target], ordered[index]
    # Renumber everything: older rows may share a sort order.
    for position, row in enumerate(ordered, start=1):
        row.sort_order = position
    db.session.flush()


@tenant_operation
def move_package(
    tenant: Tenant, package_id: int, direction: int, *, user: User | None = None
) -> Package:
    package = _get(tenant, Package, package_id)
    _swap_with_neighbour(Package, package, direction)
    _changed(tenant, "package.reorder", package, user, direction=direction)
    return package


@tenant_operation
def set_package_active(
    tenant: Tenant, package_id: int, is_active: bool, *, user: User | None = None
) -> Package:
    package = _get(tenant, Package, package_id)
    package.is_active = is_active
    db.session.flush()
    action = "package.activate" if is_active else "package.deactivate"
    _changed(tenant, action, package, user)
    return package


@tenant_operation
def delete_package(tenant: Tenant, package_id: int, *, user: User | None = None) -> None:
    package = _get(tenant, Package, package_id)
    referenced = db.session.scalar(
        select(func.count()).select_from(Booking).where(Booking.package_id == package.id)
    ) or db.session.scalar(
        select(func.count()).select_from(DateHold).where(DateHold.package_id == package.id)
    )
    if referenced:
        raise Conflict(
            f"“{package.title}” has bookings, so it cannot be deleted. Deactivate it instead: "
            "couples will no longer see it and past bookings keep their record.",
            field="package",
        )
    keys = [key for photo in package.photos for key in (photo.storage_key, photo.thumbnail_key)]
    _changed(tenant, "package.delete", package, user, title=package.title)
    db.session.delete(package)
    db.session.flush()
    media.delete_media(*keys)


@tenant_operation
def set_package_addons(
    tenant: Tenant, package_id: int, addon_ids: list[int], *, user: User | None = None
) -> Package:
    package = _get(tenant, Package, package_id)
    wanted = set(addon_ids)
    addons = list(db.session.scalars(select(AddOn).where(AddOn.id.in_(wanted)))) if wanted else []
    if len(addons) != len(wanted):
        raise DomainError("Choose among your own add-ons.", field="addons")
    package.addons = sorted(addons, key=lambda a: (a.sort_order, a.id))
    db.session.flush()
    _changed(tenant, "package.addons", package, user, addon_ids=sorted(wanted))
    return package


@tenant_operation
def add_package_photo(
    tenant: Tenant, package_id: int, data: bytes, *, alt_text: str = "", user: User | None = None
) -> PackagePhoto:
    package = _get(tenant, Package, package_id)
    stored = media.store_image(tenant.id, data, field="photo")
    photo = PackagePhoto(
        tenant_id=tenant.id,
        package_id=package.id,
        storage_key=stored.key,
        thumbnail_key=stored.thumbnail_key,
        content_type=stored.content_type,
        alt_text=(alt_text or "").strip()[:300],
        sort_order=len(package.photos) + 1,
    )
    db.session.add(photo)
    db.session.flush()
    _changed(tenant, "photo.create", photo, user, package_id=package.id)
    return photo


@tenant_operation
def delete_package_photo(tenant: Tenant, photo_id: int, *, user: User | None = None) -> int:
    """Remove a photo and its files; returns the id of the package it belonged to."""
    photo = _get(tenant, PackagePhoto, photo_id)
    keys = (photo.storage_key, photo.thumbnail_key)
    _changed(tenant, "photo.delete", photo, user, package_id=photo.package_id)
    db.session.delete(photo)
    db.session.flush()
    media.delete_media(*keys)
    return photo.package_id


@tenant_operation
def update_addon(
    tenant: Tenant,
    addon_id: int,
    *,
    title: str,
    price_cents: int,
    is_active: bool,
    user: User | None = None,
) -> AddOn:
    addon = _get(tenant, AddOn, addon_id)
    addon.title = _require_title(title)
    addon.price_cents = _require_price(price_cents)
    addon.is_active = is_active
    db.session.flush()
    _changed(
        tenant,
        "addon.update",
        addon,
        user,
        title=addon.title,
        price_cents=addon.price_cents,
        is_active=is_active,
    )
    return addon


@tenant_operation
def delete_addon(tenant: Tenant, addon_id: int, *, user: User | None = None) -> None:
    # Bookings keep their own copy of the add-on's title and price, so deleting is safe.
    addon = _get(tenant, AddOn, addon_id)
    _changed(tenant, "addon.delete", addon, user, title=addon.title)
    db.session.delete(addon)
    db.session.flush()


@tenant_operation
def update_segment(
    tenant: Tenant, segment_id: int, *, title: str, user: User | None = None
) -> Segment:
    segment = _get(tenant, Segment, segment_id)
    segment.title = _require_title(title)
    db.session.flush()
    _changed(tenant, "segment.update", segment, user, title=segment.title)
    return segment


@tenant_operation
def move_segment(
    tenant: Tenant, segment_id: int, direction: int, *, user: User | None = None
) -> Segment:
    segment = _get(tenant, Segment, segment_id)
    _swap_with_neighbour(Segment, segment, direction)
    _changed(tenant, "segment.reorder", segment, user, direction=direction)
    return segment


@tenant_operation
def delete_segment(tenant: Tenant, segment_id: int, *, user: User | None = None) -> None:
    # Its packages stay, unsegmented (the foreign key is ON DELETE SET NULL).
    segment = _get(tenant, Segment, segment_id)
    _changed(tenant, "segment.delete", segment, user, title=segment.title)
    db.session.delete(segment)
    db.session.flush()


@tenant_operation
def add_blackout_range(
    tenant: Tenant,
    first: date,
    last: date | None = None,
    reason: str = "",
    *,
    today: date | None = None,
    user: User | None = None,
) -> list[Blackout]:
    """Block ``first`` (through ``last`` when given). Dates already blocked are kept as they are;
    a single date that is already blocked is an error, so the owner knows nothing changed."""
    last = last or first
    today = today or local_today(tenant)
    if last < first:
        raise DomainError("The last date must be on or after the first.", field="last_date")
    if first < today:
        raise DomainError("Choose today or a later date.", field="on_date")
    days = (last - first).days + 1
    if days > MAX_BLACKOUT_RANGE_DAYS:
        raise DomainError(
            f"Block at most {MAX_BLACKOUT_RANGE_DAYS} days at a time.", field="last_date"
        )
    if days == 1:
        return [add_blackout(tenant, first, reason, user=user)]
    taken = set(
        db.session.scalars(
            select(Blackout.on_date).where(Blackout.on_date >= first, Blackout.on_date <= last)
        )
    )
    created = []
    for offset in range(days):
        on_date = first + timedelta(days=offset)
        if on_date not in taken:
            blackout = Blackout(tenant_id=tenant.id, on_date=on_date, reason=reason.strip()[:200])
            db.session.add(blackout)
            created.append(blackout)
    db.session.flush()
    record_audit(
        tenant,
        "blackout.create_range",
        "blackout",
        None,
        user=user,
        details={"first": first.isoformat(), "last": last.isoformat(), "added": len(created)},
    )
    db.session.flush()
    invalidate_availability(tenant)
    return created


@tenant_operation
def list_blackouts(tenant: Tenant, *, from_date: date | None = None) -> list[Blackout]:
    query = select(Blackout).order_by(Blackout.on_date)
    if from_date is not None:
        query = query.where(Blackout.on_date >= from_date)
    return list(db.session.scalars(query))


@tenant_operation
def remove_blackout(tenant: Tenant, blackout_id: int, *, user: User | None = None) -> None:
    blackout = _get(tenant, Blackout, blackout_id)
    record_audit(
        tenant,
        "blackout.delete",
        "blackout",
        blackout.id,
        user=user,
        details={"on_date": blackout.on_date.isoformat()},
    )
    db.session.flush()
    db.session.delete(blackout)
    db.session.flush()
    invalidate_availability(tenant)
