import smtplib
from datetime import timedelta

import pytest
from sqlalchemy import select

from mais import booking, mail, unit_of_work
from mais.errors import NotFound
from mais.extensions import db
from mais.models import AuditLog, Booking, BookingStatus, OutboxMessage, OutboxStatus
from mais.models.base import utcnow
from mais.tenancy import platform_scope, tenant_scope

from .conftest import cancellation_context, future, hold_for


def confirmed(tenant, package, days):
    hold = hold_for(tenant, package, future(days))
    booking_id = booking.confirm_paid_hold(
        tenant, hold.id, checkout_session_id=f"cs_{hold.id}", payment_intent_id=f"pi_{hold.id}"
    )
    return db.session.get(Booking, booking_id)


def test_double_cancel_with_refund_refunds_once(tenant, package, refunds):
    made = confirmed(tenant, package, 30)
    first = booking.cancel_booking(tenant, made.id, refund=True, user=tenant.owner)
    unit_of_work.commit()  # as the request does when it answers
    second = booking.cancel_booking(tenant, made.id, refund=True, user=tenant.owner)
    unit_of_work.commit()
    assert first.status == second.status == BookingStatus.REFUNDED
    assert refunds == [
        {
            "payment_intent_id": made.payment_intent_id,
            "idempotency_key": f"cancel-booking-{made.id}",
        }
    ]
    assert booking.day_statuses(tenant, future(30), future(30))[0].is_open
    notice = db.session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.template == "booking_cancelled", OutboxMessage.tenant_id == tenant.id
        )
    )
    assert notice.to_email == made.email and "refunded" in notice.body_text
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "booking.cancelled")).one()
    assert audit.user_id == tenant.owner.id


def test_cancel_without_refund_frees_the_date(tenant, package, refunds):
    made = confirmed(tenant, package, 31)
    assert booking.cancel_booking(tenant, made.id, refund=False).status == BookingStatus.CANCELLED
    assert refunds == []
    assert booking.day_statuses(tenant, future(31), future(31))[0].is_open


def test_another_tenants_booking_is_not_found(tenant, package, other_tenant):
    made = confirmed(tenant, package, 32)
    with (
        platform_scope("switching tenants in a test"),
        tenant_scope(other_tenant),
        pytest.raises(NotFound),
    ):
        booking.cancel_booking(other_tenant, made.id, refund=True)


def queued(dedup_key: str) -> OutboxMessage:
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.dedup_key == dedup_key)
    ).one()


def test_enqueue_is_deduplicated_by_key(app_ctx, empty_outbox):
    context = cancellation_context("R1")
    first = mail.Mail("booking_cancelled", "a@example.com", "k1", context, None)
    mail.enqueue_mails([first])
    mail.enqueue_mails(
        [first, mail.Mail("booking_cancelled", "b@example.com", "k1", context, None)]
    )
    message = queued("k1")
    assert message.to_email == "a@example.com"
    assert message.subject == f"Your booking with T on {future(1):%B %-d, %Y} was cancelled"


def test_smtp_failures_are_counted_and_retried(app, app_ctx, monkeypatch, empty_outbox):
    context = {
        "tenant_name": "T",
        "couple_name": "A",
        "partner_name": "",
        "on_date": future(1),
        "total_cents": 100,
        "currency": "usd",
        "refunded": True,
        "reference": "R2",
    }
    mail.enqueue_mails([mail.Mail("booking_cancelled", "a@example.com", "k2", context, None)])
    message = queued("k2")
    delivered = []

    class FakeSMTP:
        fail = True

        def __init__(self, host, port, timeout):
            if FakeSMTP.fail:
                raise ConnectionRefusedError(111, "refused")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def ehlo(self):
            pass

        def has_extn(self, name):
            return name == "starttls"

        def starttls(self):
            pass

        def login(self, user, password):
            delivered.append(("login", user, password))

        def send_message(self, email):
            delivered.append(email["To"])

    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    monkeypatch.setitem(app.config, "MAIS_SMTP_URL", "smtp://relay%40x:secret@mail.example:587")
    assert mail.send_pending() == 0
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
    assert message.last_error.startswith("ConnectionRefusedError")
    # Retried after a backoff of at most 30 s (the first step), which the test skips.
    assert message.next_attempt_at <= utcnow() + timedelta(seconds=30)
    message.next_attempt_at = utcnow()
    FakeSMTP.fail = False
    assert mail.send_pending() == 1
    assert delivered == [("login", "relay@x", "secret"), "a@example.com"]
    assert (message.status, message.attempts) == (OutboxStatus.SENT, 2)
