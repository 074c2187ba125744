"""Stripe Connect: destination charges through Checkout, Express accounts, refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import stripe
from flask import current_app

from ..models import OnboardingState
from ..models.base import utcnow
from . import CheckoutSession, PaymentProvider, register

if TYPE_CHECKING:
    from ..models import DateHold, Tenant

# Stripe refuses a Checkout Session that expires sooner than 30 minutes after its creation.
_MIN_SESSION_LIFETIME = timedelta(minutes=31)


def _client() -> stripe.StripeClient:
    config = current_app.config
    base = config.get("STRIPE_API_BASE")
    addresses = {"api": base, "connect": base} if base else None
    return stripe.StripeClient(config["STRIPE_SECRET_KEY"], base_addresses=addresses)  # type: ignore[arg-type]


@register
class StripeProvider(PaymentProvider):
    name = "stripe"

    def create_checkout_session(
        self, *, tenant: Tenant, hold: DateHold, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        metadata = {"tenant_id": str(tenant.id), "hold_id": hold.id}
        line_items = [_line(hold.package.title, hold.package_price_cents, hold.currency)]
        line_items += [
            _line(line["title"], line["price_cents"], hold.currency) for line in hold.addon_lines
        ]
        expires_at = max(hold.expires_at, utcnow() + _MIN_SESSION_LIFETIME)
        session = _client().v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": line_items,
                "customer_email": hold.email,
                "client_reference_id": hold.id,
                "metadata": metadata,
                "payment_intent_data": {
                    "application_fee_amount": hold.commission_cents,
                    "transfer_data": {"destination": tenant.stripe_account_id},
                    "metadata": metadata,
                },
                "success_url": success_url,
                "cancel_url": cancel_url,
                "expires_at": int(expires_at.timestamp()),
            },
            options={"idempotency_key": f"checkout-{hold.id}"},
        )
        return CheckoutSession(id=session.id, url=session.url or "")

    def expire_checkout_session(self, *, session_id: str) -> bool:
        try:
            _client().v1.checkout.sessions.expire(session_id)
        except stripe.InvalidRequestError:
            # Stripe refuses to expire a session that is complete (paid) or no longer open.
            return False
        return True

    def refund(self, *, payment_intent_id: str, idempotency_key: str) -> str:
        refund = _client().v1.refunds.create(
            params={
                "payment_intent": payment_intent_id,
                "refund_application_fee": True,
                # A destination charge's money sits with the tenant: take it back from them.
                "reverse_transfer": True,
            },
            options={"idempotency_key": idempotency_key},
        )
        return refund.id

    def create_connected_account(self, *, tenant: Tenant) -> None:
        account = _client().v1.accounts.create(
            params={
                "type": "express",
                "metadata": {"tenant_id": str(tenant.id)},
                "capabilities": {
                    "card_payments": {"requested": True},
                    "transfers": {"requested": True},
                },
            },
            options={"idempotency_key": f"express-account-{tenant.id}"},
        )
        tenant.stripe_account_id = account.id
        tenant.onboarding_state = OnboardingState.PENDING

    def create_onboarding_link(self, *, tenant: Tenant, refresh_url: str, return_url: str) -> str:
        link = _client().v1.account_links.create(
            params={
                "account": tenant.stripe_account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
        return link.url


def _line(title: str, amount_cents: int, currency: str) -> dict:
    return {
        "quantity": 1,
        "price_data": {
            "currency": currency,
            "unit_amount": amount_cents,
            "product_data": {"name": title},
        },
    }
