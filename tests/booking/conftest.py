"""Fixtures for the booking path: holds, signed provider events, committed tenants."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from mais import booking, unit_of_work
from mais.booking import CoupleDetails
from mais.extensions import db
from mais.models import DateHold, OutboxMessage, OutboxStatus, Package, Tenant
from mais.payments import sign_payload
from mais.tenancy import tenant_scope
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.factories import make_addon, make_package, make_tenant

COUPLE = CoupleDetails("Ada Lovelace", "Charles Babbage", "ada@example.com", "+1 555 123 4567")


def future(days: int) -> date:
    return booking.today() + timedelta(days=days)


def couple(n: int = 0) -> CoupleDetails:
    return CoupleDetails(f"Couple {n}", "Partner", f"couple{n}@example.com", "")


def hold_for(
    tenant: Tenant, package: Package, on_date: date, who: CoupleDetails = COUPLE, addons=()
) -> DateHold:
    hold = booking.hold_date(
        tenant,
        package_slug=package.slug,
        addon_ids=[a.id for a in addons],
        on_date=on_date,
        couple=who,
    )
    # As the Pay view does before it opens the checkout.
    unit_of_work.commit_before_network_call(tenant, hold)
    return hold


def cancellation_context(reference: str) -> dict[str, Any]:
    """What the ``booking_cancelled`` mail template needs, for tests of the outbox itself."""
    return {
        "tenant_name": "T",
        "couple_name": "A",
        "partner_name": "",
        "on_date": future(1),
        "total_cents": 100,
        "currency": "usd",
        "refunded": False,
        "reference": reference,
    }


def signed_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    event_id: str | None = None,
    timestamp: int | None = None,
    secret: str = TEST_WEBHOOK_SECRET,
) -> tuple[bytes, str]:
    """A provider event and its ``Stripe-Signature`` header, signed with Stripe's algorithm."""
    payload = json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": data_object},
        }
    )
    return payload.encode(), sign_payload(payload, secret, timestamp)


def completed_session(hold: DateHold, *, payment_intent: str | None = None) -> dict[str, Any]:
    return {
        "id": f"cs_test_{hold.id}",
        "object": "checkout.session",
        "payment_status": "paid",
        "status": "complete",
        "amount_total": hold.total_cents,
        "currency": hold.currency,
        "client_reference_id": hold.id,
        "payment_intent": payment_intent or f"pi_test_{hold.id}",
        "customer_details": {"email": hold.email, "name": hold.couple_name},
        "metadata": {"tenant_id": str(hold.tenant_id), "hold_id": hold.id},
    }


def post_event(client, payload: bytes, header: str):  # noqa: ANN001, ANN201
    return client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


@pytest.fixture
def package(tenant: Tenant) -> Package:
    return make_package(tenant, price_cents=120000, addons=[make_addon(tenant, price_cents=9000)])


@pytest.fixture
def refunds(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Every refund the mock provider is asked for."""
    from mais.payments.mock import MockProvider

    calls: list[dict[str, str]] = []
    original = MockProvider.refund

    def spy(self: MockProvider, *, payment_intent_id: str, idempotency_key: str) -> str:
        calls.append({"payment_intent_id": payment_intent_id, "idempotency_key": idempotency_key})
        return original(self, payment_intent_id=payment_intent_id, idempotency_key=idempotency_key)

    monkeypatch.setattr(MockProvider, "refund", spy)
    return calls


CommittedTenant = tuple[int, str]


@pytest.fixture
def committed_tenant(app: Flask) -> Iterator[Callable[..., CommittedTenant]]:
    """Makes tenants with a package and commits them, for tests that race across connections.
    Returns (tenant id, package slug)."""

    def make(**kwargs: Any) -> CommittedTenant:
        with app.app_context():
            tenant = make_tenant(**kwargs)
            with tenant_scope(tenant):
                package = make_package(tenant, price_cents=150000)
                db.session.commit()
                return tenant.id, package.slug

    yield make


@pytest.fixture
def empty_outbox(app_ctx: Flask) -> None:
    """Mark what committed tests of this worker left pending as sent (rolled back afterwards),
    so that relay counts concern this test's messages only."""
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.SENT)
    )
