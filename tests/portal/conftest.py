"""Fixtures for the portal: owners logged in through the real form."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from mais.models import Tenant


def log_in(client: FlaskClient, email: str, password: str) -> None:
    response = client.post("/portal/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def login(app: Flask) -> Callable[[Tenant], FlaskClient]:
    """A new client logged in as ``tenant``'s owner."""

    def _login(tenant: Tenant) -> FlaskClient:
        client = app.test_client()
        log_in(client, tenant.owner.email, tenant.owner_password)  # type: ignore[attr-defined]
        return client

    return _login


@pytest.fixture
def owner(tenant: Tenant, login: Callable[[Tenant], FlaskClient]) -> FlaskClient:
    return login(tenant)


def make_booking(
    tenant: Tenant,
    package,  # noqa: ANN001 - a Package
    on_date,  # noqa: ANN001 - a date
    *,
    total_cents: int = 120000,
    status: str = "confirmed",
    couple_name: str = "Ada Lovelace",
    created_at=None,  # noqa: ANN001
):
    """A booking row as the booking engine would leave it after payment."""
    import uuid
    from decimal import Decimal

    from mais.extensions import db
    from mais.models import Booking, BookingStatus
    from mais.money import commission_cents
    from mais.tenancy import tenant_scope

    with tenant_scope(tenant):
        booking = Booking(
            tenant_id=tenant.id,
            reference=uuid.uuid4().hex[:12].upper(),
            on_date=on_date,
            package_id=package.id,
            package_title=package.title,
            package_price_cents=package.price_cents,
            couple_name=couple_name,
            email="couple@example.com",
            total_cents=total_cents,
            currency=tenant.currency,
            commission_percent=Decimal(tenant.commission_percent),
            commission_cents=commission_cents(total_cents, Decimal(tenant.commission_percent)),
            status=BookingStatus(status),
            payment_intent_id=f"pi_{uuid.uuid4().hex[:16]}",
        )
        if created_at is not None:
            booking.created_at = created_at
        db.session.add(booking)
        db.session.flush()
    return booking


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()
