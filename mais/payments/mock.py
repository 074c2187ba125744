"""The mock provider: a checkout page on the platform itself, paying through signed events.

Pay and Cancel build the same events Stripe would send, sign them with Stripe's algorithm and the
configured webhook secret, and hand them to the very webhook handler Stripe's deliveries reach,
so locks, idempotency and the outbox run exactly as in production.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from ..extensions import db
from ..models import DateHold, HoldStatus, OnboardingState, Tenant
from ..tenancy import platform_scope
from . import CheckoutSession, PaymentProvider, register, sign_payload

SESSION_PREFIX = "cs_mock_"
API_VERSION = "2025-10-29.clover"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="mais-mock-payments")


@register
class MockProvider(PaymentProvider):
    name = "mock"

    def create_checkout_session(
        self, *, tenant: Tenant, hold: DateHold, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        session_id = SESSION_PREFIX + hold.id
        token = _serializer().dumps({"success": success_url, "cancel": cancel_url})
        base = current_app.config["MAIS_BASE_URL"]
        return CheckoutSession(session_id, f"{base}/checkout/mock/{session_id}?s={token}")

    def expire_checkout_session(self, *, session_id: str) -> bool:
        checkout = _checkout_by_session(session_id)
        if checkout is None or not checkout.is_payable:
            return False
        # As Stripe does: the session's ``expired`` event goes through the webhook handler.
        cancel(checkout)
        return True

    def refund(self, *, payment_intent_id: str, idempotency_key: str) -> str:
        # Like Stripe's idempotency: one key, one refund.
        return "re_mock_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]

    def create_connected_account(self, *, tenant: Tenant) -> None:
        tenant.stripe_account_id = f"acct_mock_{tenant.id}_{uuid.uuid4().hex[:8]}"
        tenant.onboarding_state = OnboardingState.PENDING

    def create_onboarding_link(self, *, tenant: Tenant, refresh_url: str, return_url: str) -> str:
        token = _serializer().dumps({"account": tenant.stripe_account_id, "return": return_url})
        return f"{current_app.config['MAIS_BASE_URL']}/checkout/mock/onboarding?s={token}"


@dataclass(frozen=True)
class MockCheckout:
    """What the mock checkout page shows and where its buttons lead."""

    session_id: str
    hold_id: str
    tenant_id: int
    tenant_name: str
    package_title: str
    on_date: date
    total_cents: int
    currency: str
    is_payable: bool
    success_url: str
    cancel_url: str


def load_checkout(session_id: str, token: str) -> MockCheckout | None:
    """The checkout behind a mock session URL, or None when the URL was not made by us."""
    try:
        urls = _serializer().loads(token)
    except BadSignature:
        return None
    return _checkout_by_session(session_id, urls["success"], urls["cancel"])


def _checkout_by_session(
    session_id: str, success_url: str = "", cancel_url: str = ""
) -> MockCheckout | None:
    if not session_id.startswith(SESSION_PREFIX):
        return None
    hold_id = session_id.removeprefix(SESSION_PREFIX)
    with platform_scope("the mock checkout page finds its hold by session id"):
        hold = db.session.scalar(select(DateHold).where(DateHold.id == hold_id))
        if hold is None:
            return None
        tenant = db.session.get(Tenant, hold.tenant_id)
        return MockCheckout(
            session_id=session_id,
            hold_id=hold.id,
            tenant_id=hold.tenant_id,
            tenant_name=tenant.name if tenant else "",
            package_title=hold.package.title,
            on_date=hold.on_date,
            total_cents=hold.total_cents,
            currency=hold.currency,
            is_payable=hold.status in (HoldStatus.ACTIVE, HoldStatus.RELEASED),
            success_url=success_url,
            cancel_url=cancel_url,
        )


def load_onboarding(token: str) -> tuple[str, str] | None:
    """(account id, return URL) of a mock onboarding link, or None when it was not ours."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    return data["account"], data["return"]


@dataclass(frozen=True)
class SignedEvent:
    """An event as the provider would send it: the body and its ``Stripe-Signature`` header.
    The checkout hands it to the one webhook path, exactly as a delivery from Stripe."""

    payload: bytes
    signature: str


def _signed(event_type: str, event_id: str, data_object: dict[str, Any]) -> SignedEvent:
    event = {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": data_object},
    }
    payload = json.dumps(event)
    return SignedEvent(
        payload.encode(), sign_payload(payload, current_app.config["STRIPE_WEBHOOK_SECRET"])
    )


def _session_object(checkout: MockCheckout, *, paid: bool) -> dict[str, Any]:
    return {
        "id": checkout.session_id,
        "object": "checkout.session",
        "mode": "payment",
        "amount_total": checkout.total_cents,
        "currency": checkout.currency,
        "client_reference_id": checkout.hold_id,
        "metadata": {"tenant_id": str(checkout.tenant_id), "hold_id": checkout.hold_id},
        "payment_intent": f"pi_mock_{checkout.hold_id}" if paid else None,
        "payment_status": "paid" if paid else "unpaid",
        "status": "complete" if paid else "expired",
        "success_url": checkout.success_url,
        "cancel_url": checkout.cancel_url,
    }


def pay(checkout: MockCheckout) -> SignedEvent:
    """The couple pressed Pay. The event id is fixed per session, so paying twice is one event."""
    return _signed(
        "checkout.session.completed",
        f"evt_mock_completed_{checkout.hold_id}",
        _session_object(checkout, paid=True),
    )


def cancel(checkout: MockCheckout) -> SignedEvent:
    return _signed(
        "checkout.session.expired",
        f"evt_mock_expired_{checkout.hold_id}",
        _session_object(checkout, paid=False),
    )


def complete_onboarding(account_id: str) -> SignedEvent:
    return _signed(
        "account.updated",
        f"evt_mock_account_{uuid.uuid4().hex}",
        {
            "id": account_id,
            "object": "account",
            "type": "express",
            "charges_enabled": True,
            "payouts_enabled": True,
            "details_submitted": True,
        },
    )
