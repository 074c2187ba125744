"""The Stripe implementation against a local fake Stripe server: the exact requests sent."""

from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from mais import booking, tenant_settings
from mais.extensions import db
from mais.models import DateHold, HoldStatus, OnboardingState
from mais.models.base import utcnow
from mais.payments import get_provider
from mais.payments.stripe_provider import StripeProvider

from .conftest import completed_session, couple, future, hold_for, post_event, signed_event


@pytest.fixture
def fake_stripe(app, httpserver, monkeypatch):
    monkeypatch.setitem(app.config, "MAIS_PAYMENTS", "stripe")
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_platform")
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", httpserver.url_for("").rstrip("/"))
    return httpserver


def sent(httpserver, path):
    """(form fields, headers) of every request the fake server received on ``path``."""
    return [
        ({k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}, request.headers)
        for request, _response in httpserver.log
        if request.path == path
    ]


def test_provider_is_chosen_by_configuration(app_ctx, fake_stripe):
    assert isinstance(get_provider(), StripeProvider)


def test_checkout_session_is_a_destination_charge_with_the_fee(tenant, package, fake_stripe):
    extra = package.addons[0]
    hold = hold_for(tenant, package, future(15), addons=[extra])
    fake_stripe.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {
            "id": "cs_test_123",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_123",
        }
    )
    url = booking.start_checkout(
        tenant,
        hold,
        success_url="https://studio.example/ok",
        cancel_url="https://studio.example/no",
    )
    assert url == "https://checkout.stripe.com/c/pay/cs_test_123"
    assert db.session.get(DateHold, hold.id).checkout_session_id == "cs_test_123"
    [(form, headers)] = sent(fake_stripe, "/v1/checkout/sessions")
    assert headers["Idempotency-Key"] == f"checkout-{hold.id}"
    assert headers["Authorization"] == "Bearer sk_test_platform"
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][unit_amount]"] == "120000"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][price_data][product_data][name]"] == package.title
    assert form["line_items[1][price_data][unit_amount]"] == "9000"
    assert (
        form["payment_intent_data[application_fee_amount]"] == str(hold.commission_cents) == "16125"
    )
    assert form["payment_intent_data[transfer_data][destination]"] == tenant.stripe_account_id
    assert form["payment_intent_data[metadata][hold_id]"] == hold.id
    assert form["payment_intent_data[metadata][tenant_id]"] == str(tenant.id)
    assert form["metadata[hold_id]"] == hold.id and form["metadata[tenant_id]"] == str(tenant.id)
    assert form["success_url"] == "https://studio.example/ok"
    assert form["cancel_url"] == "https://studio.example/no"
    expires_in = int(form["expires_at"]) - utcnow().timestamp()
    assert 30 * 60 < expires_in <= 32 * 60


def test_lost_race_refund_includes_the_fee_and_is_requested_once(
    client, tenant, package, fake_stripe
):
    fake_stripe.expect_request("/v1/refunds", method="POST").respond_with_json(
        {"id": "re_123", "object": "refund", "status": "succeeded"}
    )
    late = hold_for(tenant, package, future(16), couple(1))
    late.expires_at = utcnow() - timedelta(minutes=1)
    db.session.flush()
    winner = hold_for(tenant, package, future(16), couple(2))
    post_event(client, *signed_event("checkout.session.completed", completed_session(winner)))

    delivery = signed_event(
        "checkout.session.completed", completed_session(late, payment_intent="pi_late")
    )
    assert post_event(client, *delivery).status_code == 200
    assert post_event(client, *delivery).status_code == 200

    [(form, headers)] = sent(fake_stripe, "/v1/refunds")
    assert form == {
        "payment_intent": "pi_late",
        "refund_application_fee": "true",
        "reverse_transfer": "true",
    }
    assert headers["Idempotency-Key"] == f"lost-hold-{late.id}"
    late = db.session.scalar(select(DateHold).where(DateHold.id == late.id))
    assert (late.status, late.refund_id) == (HoldStatus.REFUNDED, "re_123")


def test_onboarding_creates_an_express_account_then_a_link(tenant, fake_stripe):
    tenant.stripe_account_id = None
    tenant.onboarding_state = OnboardingState.NOT_STARTED
    fake_stripe.expect_request("/v1/accounts", method="POST").respond_with_json(
        {"id": "acct_new", "object": "account"}
    )
    fake_stripe.expect_request("/v1/account_links", method="POST").respond_with_json(
        {"object": "account_link", "url": "https://connect.stripe.com/setup/e/acct_new/x"}
    )
    assert tenant_settings.open_payouts_account(tenant)
    link = get_provider().create_onboarding_link(
        tenant=tenant, refresh_url="https://mais.example/r", return_url="https://mais.example/done"
    )
    assert link == "https://connect.stripe.com/setup/e/acct_new/x"
    assert (tenant.stripe_account_id, tenant.onboarding_state) == (
        "acct_new",
        OnboardingState.PENDING,
    )
    [(account, account_headers)] = sent(fake_stripe, "/v1/accounts")
    assert account["type"] == "express"
    assert account["metadata[tenant_id]"] == str(tenant.id)
    assert account_headers["Idempotency-Key"] == f"express-account-{tenant.id}"
    [(form, _)] = sent(fake_stripe, "/v1/account_links")
    assert form == {
        "account": "acct_new",
        "refresh_url": "https://mais.example/r",
        "return_url": "https://mais.example/done",
        "type": "account_onboarding",
    }

    assert not tenant_settings.open_payouts_account(tenant)
    assert len(sent(fake_stripe, "/v1/accounts")) == 1, "an existing account is reused"


def test_leaving_the_checkout_expires_the_session_and_frees_the_date(tenant, package, fake_stripe):
    hold = hold_for(tenant, package, future(16))
    hold.checkout_session_id = "cs_test_left"
    db.session.commit()
    fake_stripe.expect_request(
        "/v1/checkout/sessions/cs_test_left/expire", method="POST"
    ).respond_with_json({"id": "cs_test_left", "object": "checkout.session", "status": "expired"})
    booking.abandon_checkout(tenant, hold.id, booking.open_checkout_of(tenant, hold.id))
    assert len(sent(fake_stripe, "/v1/checkout/sessions/cs_test_left/expire")) == 1
    assert db.session.get(DateHold, hold.id).status == HoldStatus.RELEASED
    assert booking.day_statuses(tenant, future(16), future(16))[0].is_open


def test_a_checkout_paid_meanwhile_is_left_to_its_event(tenant, package, fake_stripe):
    hold = hold_for(tenant, package, future(17))
    hold.checkout_session_id = "cs_test_paid"
    db.session.commit()
    fake_stripe.expect_request(
        "/v1/checkout/sessions/cs_test_paid/expire", method="POST"
    ).respond_with_json(
        {"error": {"type": "invalid_request_error", "message": "Session is complete."}},
        status=400,
    )
    booking.abandon_checkout(tenant, hold.id, booking.open_checkout_of(tenant, hold.id))
    assert db.session.get(DateHold, hold.id).status == HoldStatus.ACTIVE
