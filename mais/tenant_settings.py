"""A tenant's own settings: branding, where the widget may be embedded, keys, payouts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import current_app

from . import media
from .audit import record_audit
from .cache import invalidate_availability, invalidate_catalog
from .errors import DomainError
from .extensions import db
from .ical import forget_synced_days_window
from .models import Tenant, User
from .origins import parse_origin
from .tenancy import tenant_operation
from .tenant_registry import rotate_secret_key, validate_time_zone

COLOR_PATTERN = re.compile(r"^#[0-9a-f]{6}$")
MAX_ORIGINS = 20


def _is_production() -> bool:
    return current_app.config.get("MAIS_ENV") == "production"


def validate_color(value: str, field: str) -> str:
    color = (value or "").strip().lower()
    if not COLOR_PATTERN.match(color):
        raise DomainError("Use a colour such as #7c3aed (# and six hex digits).", field=field)
    return color


def parse_origins(text: str) -> list[str]:
    origins: list[str] = []
    for line in (text or "").splitlines():
        if line.strip():
            origin = parse_origin(line, allow_local=not _is_production())
            if origin not in origins:
                origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise DomainError(f"List at most {MAX_ORIGINS} origins.", field="origins")
    return origins


def validate_return_url(url: str, origins: list[str]) -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{(parts.hostname or '').lower()}"
    try:
        if parts.port is not None:
            origin += f":{parts.port}"
    except ValueError:
        origin = ""
    if origin not in origins:
        raise DomainError(
            "The return page must be on one of your allowed origins above.", field="return_url"
        )
    return url


@tenant_operation
def update_branding(
    tenant: Tenant,
    *,
    name: str,
    primary_color: str,
    accent_color: str,
    logo: bytes | None = None,
    remove_logo: bool = False,
    user: User | None = None,
) -> Tenant:
    name = (name or "").strip()
    if not name:
        raise DomainError("Enter the business name.", field="name")
    if len(name) > 200:
        raise DomainError("Keep the name under 200 characters.", field="name")
    primary = validate_color(primary_color, "primary_color")
    accent = validate_color(accent_color, "accent_color")
    old_logo = tenant.logo_key
    if logo:
        tenant.logo_key = media.store_image(tenant.id, logo, field="logo").key
    elif remove_logo:
        tenant.logo_key = None
    tenant.name, tenant.brand_primary_color, tenant.brand_accent_color = name, primary, accent
    if old_logo and old_logo != tenant.logo_key:
        media.delete_media(old_logo, old_logo.replace(".", "-thumb.", 1))
    record_audit(
        tenant,
        "settings.branding",
        "tenant",
        tenant.id,
        user=user,
        details={"name": name, "primary": primary, "accent": accent, "logo": bool(tenant.logo_key)},
    )
    db.session.flush()
    invalidate_catalog(tenant)
    return tenant


@tenant_operation
def update_time_zone(tenant: Tenant, *, time_zone: str, user: User | None = None) -> Tenant:
    """The zone the tenant's days are counted in: today, past, the horizon and busy days."""
    zone = validate_time_zone(time_zone)
    if zone == tenant.time_zone:
        return tenant
    old_zone, tenant.time_zone = tenant.time_zone, zone
    forget_synced_days_window(tenant)
    record_audit(
        tenant,
        "settings.time_zone",
        "tenant",
        tenant.id,
        user=user,
        details={"from": old_zone, "to": zone},
    )
    db.session.flush()
    invalidate_availability(tenant)
    return tenant


@tenant_operation
def update_embedding(
    tenant: Tenant, *, origins_text: str, return_url: str, user: User | None = None
) -> Tenant:
    origins = parse_origins(origins_text)
    tenant.return_url = validate_return_url(return_url, origins)
    tenant.allowed_origins = origins
    record_audit(
        tenant,
        "settings.embedding",
        "tenant",
        tenant.id,
        user=user,
        details={"origins": origins, "return_url": tenant.return_url},
    )
    db.session.flush()
    return tenant


@tenant_operation
def rotate_secret(tenant: Tenant, *, user: User | None = None) -> str:
    """A new secret key, shown once; the old one stops working at once."""
    key = rotate_secret_key(tenant)
    record_audit(
        tenant,
        "settings.rotate_secret_key",
        "tenant",
        tenant.id,
        user=user,
        details={"hint": tenant.secret_key_hint},
    )
    db.session.flush()
    return key


@tenant_operation
def open_payouts_account(tenant: Tenant) -> bool:
    """Create the tenant's payouts account at the payment provider unless it has one; returns
    whether it did (the caller then commits at once: the account exists at the provider)."""
    from . import payments  # the booking engine's provider registry

    if tenant.stripe_account_id:
        return False
    payments.get_provider().create_connected_account(tenant=tenant)
    return True


@tenant_operation
def start_onboarding(
    tenant: Tenant, *, refresh_url: str, return_url: str, user: User | None = None
) -> str:
    """The payment provider's onboarding page for this tenant's payouts account (which
    ``open_payouts_account`` made)."""
    from . import payments  # the booking engine's provider registry

    link = payments.get_provider().create_onboarding_link(
        tenant=tenant, refresh_url=refresh_url, return_url=return_url
    )
    record_audit(tenant, "settings.onboarding_started", "tenant", tenant.id, user=user)
    db.session.flush()
    return link


def embed_snippet(tenant: Tenant, base_url: str) -> str:
    return (
        f'<script src="{base_url}/static/sdk/mais-sdk.js" data-tenant="{tenant.slug}" '
        f'data-key="{tenant.public_key}" async></script>'
    )
