"""Factories for tenants and catalog rows. Each call makes unique slugs, so tests never collide
even when they commit (race tests) or run in parallel."""

from __future__ import annotations

import itertools
import uuid
from datetime import date
from decimal import Decimal

from mais import catalog
from mais.extensions import db
from mais.models import AddOn, Blackout, OnboardingState, Package, Segment, Tenant
from mais.tenant_registry import IssuedKeys, create_tenant

_counter = itertools.count(1)


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_tenant(
    slug: str | None = None,
    *,
    name: str | None = None,
    commission_percent: Decimal | str | None = None,
    allowed_origins: list[str] | None = None,
    owner_email: str | None = None,
    owner_password: str = "correct horse battery",
    onboarded: bool = True,
    is_active: bool = True,
    currency: str = "usd",
) -> Tenant:
    """A tenant with an owner. ``tenant.issued_keys`` and ``tenant.owner`` hold what creation
    returned (the secret key is shown only once)."""
    slug = slug or unique_slug()
    tenant, owner, keys = create_tenant(
        slug=slug,
        name=name or f"Studio {next(_counter)}",
        owner_email=owner_email or f"owner-{slug}@example.com",
        owner_password=owner_password,
        commission_percent=commission_percent,
        currency=currency,
        allowed_origins=allowed_origins
        if allowed_origins is not None
        else ["https://studio.example"],
    )
    if onboarded:
        tenant.stripe_account_id = f"acct_test{uuid.uuid4().hex[:12]}"
        tenant.onboarding_state = OnboardingState.COMPLETE
    tenant.is_active = is_active
    db.session.flush()
    tenant.issued_keys: IssuedKeys = keys  # type: ignore[misc]
    tenant.owner = owner  # type: ignore[attr-defined]
    tenant.owner_password = owner_password  # type: ignore[attr-defined]
    return tenant


def make_segment(tenant: Tenant, title: str = "Elopements") -> Segment:
    return catalog.create_segment(tenant, title)


def make_addon(tenant: Tenant, title: str | None = None, price_cents: int = 5000) -> AddOn:
    return catalog.create_addon(tenant, title or f"Add-on {next(_counter)}", price_cents)


def make_package(
    tenant: Tenant,
    title: str | None = None,
    price_cents: int = 120000,
    *,
    slug: str | None = None,
    addons: list[AddOn] | None = None,
    segment: Segment | None = None,
    description_html: str = "<p>A lovely day.</p>",
    is_active: bool = True,
) -> Package:
    title = title or f"Package {next(_counter)}"
    return catalog.create_package(
        tenant,
        title,
        price_cents,
        slug=slug,
        addons=addons,
        segment=segment,
        description_html=description_html,
        is_active=is_active,
    )


def make_blackout(tenant: Tenant, on_date: date, reason: str = "Closed") -> Blackout:
    return catalog.add_blackout(tenant, on_date, reason)
