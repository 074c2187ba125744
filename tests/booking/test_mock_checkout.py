"""The mock provider end to end through the Flask test client."""

from email import message_from_bytes
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select

from mais import booking, mail, tenant_settings
from mais.extensions import db
from mais.models import DateHold, HoldStatus, OnboardingState, OutboxMessage, OutboxStatus
from mais.payments import get_provider

from .conftest import future, hold_for


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_pay_on_the_mock_page_books_and_the_relay_writes_eml_files(
    app, client, tenant, package, empty_outbox
):
    hold = hold_for(tenant, package, future(21))
    url = booking.start_checkout(
        tenant,
        hold,
        success_url="https://studio.example/booked?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://studio.example/cancelled",
    )
    assert url.startswith("http://localhost/checkout/mock/cs_mock_")
    page = client.get(_path(url))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "$1,200.00" in html and tenant.name in html and "Cancel and go back" in html

    session_id = f"cs_mock_{hold.id}"
    token = urlsplit(url).query.removeprefix("s=")
    paid = client.post(f"/checkout/mock/{session_id}/pay", data={"s": token})
    assert paid.status_code == 303
    assert paid.headers["Location"] == f"https://studio.example/booked?session={session_id}"

    made = booking.find_booking_for_hold(tenant, hold.id)
    assert made is not None and made.payment_intent_id == f"pi_mock_{hold.id}"
    messages = list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.tenant_id == tenant.id)
            .order_by(OutboxMessage.id)
        )
    )
    assert [m.template for m in messages] == ["booking_confirmation", "booking_notice"]

    assert mail.send_pending() == 2
    files = sorted(Path(app.config["MAIS_MAIL_DIR"]).glob(f"{messages[0].id:06d}-*.eml"))
    email = message_from_bytes(files[0].read_bytes())
    assert email["To"] == hold.email
    assert made.reference in email.get_payload()
    assert all(m.status == OutboxStatus.SENT for m in messages)
    assert mail.send_pending() == 0

    again = client.post(f"/checkout/mock/{session_id}/pay", data={"s": token})
    assert again.status_code == 303, "paying twice is one event"


def test_cancel_on_the_mock_page_releases_the_hold(client, tenant, package):
    hold = hold_for(tenant, package, future(22))
    url = booking.start_checkout(
        tenant,
        hold,
        success_url="https://studio.example/ok",
        cancel_url="https://studio.example/no",
    )
    token = urlsplit(url).query.removeprefix("s=")
    response = client.post(f"/checkout/mock/cs_mock_{hold.id}/cancel", data={"s": token})
    assert response.headers["Location"] == "https://studio.example/no"
    assert db.session.get(DateHold, hold.id).status == HoldStatus.RELEASED
    assert booking.day_statuses(tenant, future(22), future(22))[0].is_open


def test_a_forged_mock_url_is_not_found(client, tenant, package):
    hold = hold_for(tenant, package, future(23))
    assert client.get(f"/checkout/mock/cs_mock_{hold.id}?s=forged").status_code == 404
    assert client.post(f"/checkout/mock/cs_mock_{hold.id}/pay", data={"s": "x"}).status_code == 404
    assert booking.find_booking_for_hold(tenant, hold.id) is None


def test_mock_onboarding_completes_through_a_signed_event(client, tenant):
    tenant.stripe_account_id = None
    tenant.onboarding_state = OnboardingState.NOT_STARTED
    assert tenant_settings.open_payouts_account(tenant)
    db.session.commit()  # as the portal's view does before it asks for the link
    link = get_provider().create_onboarding_link(
        tenant=tenant,
        refresh_url="http://localhost/portal/x",
        return_url="http://localhost/portal/done",
    )
    assert tenant.stripe_account_id.startswith("acct_mock_")
    assert client.get(_path(link)).status_code == 200
    token = urlsplit(link).query.removeprefix("s=")
    response = client.post("/checkout/mock/onboarding", data={"s": token})
    assert response.headers["Location"] == "http://localhost/portal/done"
    db.session.refresh(tenant)
    assert tenant.onboarding_state == OnboardingState.COMPLETE


def test_inline_delivery_writes_the_emails_right_after_paying(
    app, client, tenant, package, empty_outbox, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIS_SEND_MAIL_INLINE", True)
    hold = hold_for(tenant, package, future(24))
    url = booking.start_checkout(
        tenant,
        hold,
        success_url="https://studio.example/ok",
        cancel_url="https://studio.example/no",
    )
    token = urlsplit(url).query.removeprefix("s=")
    assert (
        client.post(f"/checkout/mock/cs_mock_{hold.id}/pay", data={"s": token}).status_code == 303
    )
    messages = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.tenant_id == tenant.id)
    ).all()
    assert len(messages) == 2 and all(m.status == OutboxStatus.SENT for m in messages)
    for message in messages:
        assert list(Path(app.config["MAIS_MAIL_DIR"]).glob(f"{message.id:06d}-*.eml"))


def test_start_checkout_refuses_an_expired_hold(tenant, package):
    from datetime import timedelta

    import pytest

    from mais.errors import DateUnavailable
    from mais.models.base import utcnow

    hold = hold_for(tenant, package, future(25))
    hold.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(DateUnavailable) as caught:
        booking.start_checkout(tenant, hold, success_url="https://a/", cancel_url="https://b/")
    assert caught.value.alternatives
