"""A request is one unit of work: it commits once when it answers under 400, rolls back on any
other answer or an exception, and runs what was queued with ``call_after_commit`` only after
its commit."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

import portal.calendar
from mais import accounts
from mais.errors import DomainError
from mais.extensions import db
from mais.models import Booking, BookingStatus, Tenant, User
from mais.payments.mock import MockProvider
from mais.tenancy import platform_scope, tenant_scope
from tests.factories import make_package

from .conftest import make_booking

SIGNUP = {
    "name": "Rowan & Reed",
    "slug": "rowan-and-reed",
    "email": "owner@rowan.example",
    "password": "a long enough password",
}


def _signed_up() -> tuple[int, int]:
    with platform_scope("the test counts what a signup left behind"):
        tenants = db.session.scalar(
            select(func.count()).select_from(Tenant).where(Tenant.slug == SIGNUP["slug"])
        )
        users = db.session.scalar(
            select(func.count()).select_from(User).where(User.email == SIGNUP["email"])
        )
    return tenants, users


def test_a_request_that_fails_after_its_domain_call_wrote_leaves_nothing_behind(
    client, app_ctx, monkeypatch
):
    # The tenant and its owner are written; then the request fails before it answers.
    def broken(user: User) -> None:
        raise RuntimeError("the device cookie could not be signed")

    monkeypatch.setattr(accounts, "remember_device", broken)
    with pytest.raises(RuntimeError):
        client.post("/portal/signup", data=SIGNUP)
    assert _signed_up() == (0, 0)


def test_a_4xx_answer_commits_nothing(client, app_ctx, monkeypatch):
    def refused(user: User) -> None:
        raise DomainError("This browser cannot be remembered.")

    monkeypatch.setattr(accounts, "remember_device", refused)
    response = client.post("/portal/signup", data=SIGNUP)
    assert response.status_code == 400
    assert "This browser cannot be remembered." in response.get_data(as_text=True)
    assert _signed_up() == (0, 0)


def test_a_refund_queued_after_commit_runs_after_a_successful_request_only(
    owner, tenant, monkeypatch
):
    refunds: list[str] = []
    original = MockProvider.refund

    def counting_refund(self: MockProvider, *, payment_intent_id: str, idempotency_key: str) -> str:
        refunds.append(idempotency_key)
        return original(self, payment_intent_id=payment_intent_id, idempotency_key=idempotency_key)

    monkeypatch.setattr(MockProvider, "refund", counting_refund)
    booking = make_booking(tenant, make_package(tenant), date.today() + timedelta(days=25))
    db.session.commit()
    url = f"/portal/bookings/{booking.id}/cancel"

    # The cancellation is decided (refund queued), then the request fails before it answers.
    def failing_flash(message: str, category: str = "message") -> None:
        raise DomainError("The page could not be answered.")

    with monkeypatch.context() as patch:
        patch.setattr(portal.calendar, "flash", failing_flash)
        assert owner.post(url, data={"refund": "1"}).status_code == 400
    assert refunds == []
    with tenant_scope(tenant):
        assert db.session.get(Booking, booking.id).status == BookingStatus.CONFIRMED

    assert owner.post(url, data={"refund": "1"}).status_code in (302, 303)
    assert refunds == [f"cancel-booking-{booking.id}"]
    with tenant_scope(tenant):
        cancelled = db.session.get(Booking, booking.id)
        assert (cancelled.status, cancelled.is_refund_owed) == (BookingStatus.REFUNDED, False)
        assert cancelled.refund_id
