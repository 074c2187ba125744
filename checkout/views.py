"""The Stripe webhook endpoint, the mock provider's pages, and inline mail delivery."""

from __future__ import annotations

import logging

from flask import Response, abort, current_app, g, redirect, render_template, request

from mais import mail, unit_of_work
from mais.extensions import csrf, db
from mais.origins import origin_of
from mais.payments import mock
from mais.security import allow_form_action_to
from mais.webhooks import receive_webhook

from . import bp

log = logging.getLogger(__name__)


@bp.post("/webhooks/stripe")
@csrf.exempt
@unit_of_work.owns_its_transactions
def stripe_webhook() -> tuple[dict, int]:
    """Its own unit of work (``receive_webhook``): the request adds no commit or rollback."""
    result = receive_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
    return {"status": result.message}, result.status_code


def _require_mock() -> None:
    if current_app.config["MAIS_PAYMENTS"] != "mock":
        abort(404)


def _deliver(event: mock.SignedEvent) -> int:
    """The mock provider's event goes through the one webhook path, signature and all."""
    return receive_webhook(event.payload, event.signature).status_code


def _mock_checkout(session_id: str) -> mock.MockCheckout:
    _require_mock()
    checkout = mock.load_checkout(session_id, request.values.get("s", ""))
    if checkout is None:
        abort(404)
    return checkout


@bp.get("/checkout/mock/<session_id>")
def mock_checkout_page(session_id: str) -> str:
    checkout = _mock_checkout(session_id)
    allow_form_action_to([origin_of(checkout.success_url), origin_of(checkout.cancel_url)])
    return render_template(
        "checkout/mock_checkout.html", checkout=checkout, token=request.args.get("s", "")
    )


@bp.post("/checkout/mock/<session_id>/pay")
def mock_checkout_pay(session_id: str) -> Response | tuple[str, int]:
    checkout = _mock_checkout(session_id)
    if _deliver(mock.pay(checkout)) != 200:
        return render_template("checkout/mock_failed.html", checkout=checkout), 500
    return redirect(checkout.success_url.replace("{CHECKOUT_SESSION_ID}", session_id), 303)


@bp.post("/checkout/mock/<session_id>/cancel")
def mock_checkout_cancel(session_id: str) -> Response | tuple[str, int]:
    checkout = _mock_checkout(session_id)
    if _deliver(mock.cancel(checkout)) != 200:
        return render_template("checkout/mock_failed.html", checkout=checkout), 500
    return redirect(checkout.cancel_url, 303)


def _mock_onboarding() -> tuple[str, str]:
    _require_mock()
    onboarding = mock.load_onboarding(request.values.get("s", ""))
    if onboarding is None:
        abort(404)
    return onboarding


@bp.get("/checkout/mock/onboarding")
def mock_onboarding_page() -> str:
    _mock_onboarding()
    return render_template("checkout/mock_onboarding.html", token=request.args.get("s", ""))


@bp.post("/checkout/mock/onboarding")
def mock_onboarding_complete() -> Response | tuple[str, int]:
    account_id, return_url = _mock_onboarding()
    if _deliver(mock.complete_onboarding(account_id)) != 200:
        return render_template("checkout/mock_failed.html", checkout=None), 500
    return redirect(return_url, 303)


@bp.after_app_request
def _deliver_mail_inline(response: Response) -> Response:
    """Development convenience (``MAIS_SEND_MAIL_INLINE``): deliver what this request committed,
    so ``make run`` users find the ``.eml`` files at once. Production runs the relay instead."""
    if not current_app.config.get("MAIS_SEND_MAIL_INLINE") or not g.get("mais_mail_enqueued"):
        return response
    if response.status_code >= 400:
        return response  # the request's work was rolled back; nothing of it may be sent
    try:
        mail.send_pending()
    except Exception:
        db.session.rollback()
        log.exception("inline mail delivery failed; the relay will retry")
    return response
