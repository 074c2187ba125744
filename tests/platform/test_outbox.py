"""The outbox relay's retries: backoff with jitter, a 48-hour give-up window measured from the
first attempt, dead messages, and the admin's "Retry now". Delivery goes to a real SMTP server
on 127.0.0.1 (the drills' sink), which can refuse connections or recipients."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from mais import mail
from mais.extensions import db
from mais.models import AuditLog, OutboxMessage, OutboxStatus, User
from mais.models.base import utcnow
from mais.tenancy import tenant_scope
from tests.drills.smtp_sink import SmtpSink

from ..factories import make_tenant

HOUR = timedelta(hours=1)


@pytest.fixture
def sink(app_ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    """A real SMTP server as the relay's, and an outbox holding this test's messages only
    (what committed tests of this worker left pending is marked sent, rolled back afterwards)."""
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status != OutboxStatus.SENT)
        .values(status=OutboxStatus.SENT)
    )
    server = SmtpSink()
    monkeypatch.setitem(app_ctx.config, "MAIS_SMTP_URL", server.url)
    yield server
    server.stop()


def queued(tenant_id: int | None = None, **fields: object) -> OutboxMessage:
    message = OutboxMessage(
        dedup_key=f"test:{uuid.uuid4().hex}",
        tenant_id=tenant_id,
        template="booking_confirmation",
        to_email="couple@example.com",
        subject="Booked",
        body_text="Hello\n",
        **fields,
    )
    db.session.add(message)
    db.session.flush()
    return message


def test_waits_double_up_to_the_cap_and_jitter_stays_under_them() -> None:
    ceilings = [mail.retry_ceiling(n, base=30, cap=3600) for n in range(1, 11)]
    assert ceilings == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert mail.retry_ceiling(10_000, base=30, cap=3600) == 3600  # no overflow, however long

    rng = random.Random(7)
    for attempts, ceiling in enumerate(ceilings, start=1):
        waits = [
            mail.retry_delay(attempts, base=30, cap=3600, rng=rng).total_seconds()
            for _ in range(400)
        ]
        assert all(0 <= wait <= ceiling for wait in waits)
        # Full jitter: spread over the whole range, not bunched at the ceiling.
        assert min(waits) < 0.1 * ceiling and max(waits) > 0.9 * ceiling


def test_the_default_schedule_keeps_trying_for_48_hours_from_the_first_attempt(
    app_ctx: Flask, sink: SmtpSink
) -> None:
    config = app_ctx.config
    assert (
        config["MAIS_MAIL_RETRY_BASE"],
        config["MAIS_MAIL_RETRY_CAP"],
        config["MAIS_MAIL_GIVE_UP_AFTER"],
    ) == (30, 3600, 48 * 3600)
    sink.refusing = True
    # Forty failed attempts are no reason to give up while the window is open.
    message = queued(created_at=utcnow() - 47 * HOUR - timedelta(minutes=55), attempts=40)

    before = utcnow()
    assert mail.send_pending() == 0
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 41)
    assert message.last_error == "SMTPConnectError: 421"
    assert before <= message.next_attempt_at <= utcnow() + HOUR  # the cap

    # Measured from when it was queued, not by counting: past 48 hours, one failure is enough.
    message.created_at = utcnow() - 48 * HOUR - timedelta(minutes=1)
    message.next_attempt_at = utcnow()
    message.attempts = 0
    db.session.flush()
    assert mail.send_pending() == 0
    assert (message.status, message.attempts) == (OutboxStatus.DEAD, 1)


def test_a_message_due_later_is_not_claimed(app_ctx: Flask, sink: SmtpSink) -> None:
    message = queued(next_attempt_at=utcnow() + timedelta(minutes=10))
    assert mail.send_pending() == 0
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 0)
    assert not sink.accepted

    message.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.flush()
    assert mail.send_pending() == 1
    assert message.status == OutboxStatus.SENT and len(sink.accepted) == 1


def test_an_unreachable_server_ends_the_run_after_one_attempt(
    app_ctx: Flask, sink: SmtpSink
) -> None:
    sink.refusing = True
    first, second = queued(), queued()
    assert mail.send_pending() == 0
    assert sink.refused_connections == 1
    assert sorted([first.attempts, second.attempts]) == [0, 1]
    assert first.status == second.status == OutboxStatus.PENDING


def test_a_recipient_refused_for_good_is_dead_at_once_and_its_address_not_kept(
    app_ctx: Flask, sink: SmtpSink
) -> None:
    sink.refuse_recipients = True
    message = queued()
    assert mail.send_pending() == 0
    assert (message.status, message.attempts) == (OutboxStatus.DEAD, 1)
    assert message.last_error == "SMTPRecipientsRefused: 550"


def test_admin_lists_dead_and_waiting_mail_and_retry_now_delivers_it(
    admin_client: FlaskClient, app_ctx: Flask, sink: SmtpSink, platform_admin: User
) -> None:
    tenant = make_tenant()
    dead = queued(
        tenant.id,
        status=OutboxStatus.DEAD,
        attempts=51,
        created_at=utcnow() - 49 * HOUR,
        last_error="SMTPConnectError: 421",
    )
    next_attempt = (utcnow() + HOUR).replace(microsecond=0)
    waiting = queued(attempts=3, next_attempt_at=next_attempt, last_error="TimeoutError: ")

    page = admin_client.get("/admin/outbox").get_data(as_text=True)
    dead_section, _, waiting_section = page.partition("Waiting to be sent")
    assert "SMTPConnectError: 421" in dead_section
    assert f'action="/admin/outbox/{dead.id}/retry"' in dead_section
    assert "Retry now" in dead_section
    assert "couple@example.com" not in page and "c***@example.com" in page
    assert f'action="/admin/outbox/{waiting.id}/retry"' in waiting_section
    assert next_attempt.strftime("%Y-%m-%d %H:%M:%S") in waiting_section
    assert "<td>3</td>" in waiting_section

    response = admin_client.post(f"/admin/outbox/{dead.id}/retry", follow_redirects=True)
    assert "queued again" in response.get_data(as_text=True)
    db.session.refresh(dead)
    assert (dead.status, dead.attempts) == (OutboxStatus.PENDING, 0)
    assert dead.next_attempt_at <= utcnow()
    with tenant_scope(tenant):
        entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "outbox.retry")).one()
    assert (entry.object_id, entry.user_id) == (str(dead.id), platform_admin.id)
    assert entry.details == {"status": "dead", "attempts": "51"}

    assert mail.send_pending() == 1  # the waiting one is not due yet
    assert dead.status == OutboxStatus.SENT and len(sink.accepted) == 1

    again = admin_client.post(f"/admin/outbox/{dead.id}/retry", follow_redirects=True)
    assert "was sent already" in again.get_data(as_text=True)
    db.session.refresh(dead)
    assert dead.status == OutboxStatus.SENT
    assert admin_client.post("/admin/outbox/999999999/retry").status_code == 404
