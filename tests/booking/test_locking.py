"""The date lock: exact keys, a bounded wait, and no provider call while it is held."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import psycopg
import pytest
from sqlalchemy import select, text, update

from mais import booking, refunds, unit_of_work
from mais.extensions import db
from mais.locking import DateBusy, date_lock_key, lock_date
from mais.models import Booking, BookingStatus, DateHold, HoldStatus, Tenant, WebhookEvent
from mais.payments.mock import MockProvider
from mais.tenancy import platform_scope, tenant_scope

from .conftest import completed_session, couple, future, hold_for, post_event, signed_event

_HELD_ADVISORY = (
    "SELECT classid, objid, objsubid FROM pg_locks "
    "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
)


def test_the_lock_is_keyed_by_tenant_and_day_number_without_a_hash(app_ctx):
    lock_date(db.session, 7, date(2026, 6, 20))
    held = db.session.execute(text(_HELD_ADVISORY)).all()
    # The two-integer form: classid and objid are the two keys, objsubid 2 names the form.
    assert [tuple(row) for row in held] == [(7, date(2026, 6, 20).toordinal(), 2)]
    keys = {
        date_lock_key(t, date(2026, 1, 1) + timedelta(days=d)) for t in (1, 2) for d in range(800)
    }
    assert len(keys) == 1600


def test_other_dates_and_other_tenants_never_wait(app, app_ctx, database_url, monkeypatch):
    monkeypatch.setitem(app.config, "MAIS_DATE_LOCK_TIMEOUT_MS", 200)
    day = date(2027, 3, 14)
    with psycopg.connect(database_url) as stuck:
        stuck.execute("SELECT pg_advisory_xact_lock(%s, %s)", (41, day.toordinal()))
        lock_date(db.session, 41, day + timedelta(days=1))
        lock_date(db.session, 42, day)


def test_a_stuck_holder_makes_a_hold_answer_busy_within_the_timeout(
    app, tenant, package, database_url, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIS_DATE_LOCK_TIMEOUT_MS", 300)
    day = future(33)
    db.session.commit()  # the refusal ends the transaction, as a request's would end
    with psycopg.connect(database_url) as stuck:
        stuck.execute("SELECT pg_advisory_xact_lock(%s, %s)", (tenant.id, day.toordinal()))
        started = time.monotonic()
        with pytest.raises(DateBusy) as busy:
            hold_for(tenant, package, day)
        assert time.monotonic() - started < 3
        assert "try again" in busy.value.message
        # The session is usable at once: the widget can still show other dates.
        assert booking.next_open_dates(tenant, day)
    # The holder is gone: the same date can be held.
    assert hold_for(tenant, package, day).on_date == day


@pytest.mark.committed
def test_a_webhook_facing_a_stuck_holder_fails_fast_and_succeeds_when_redelivered(
    app, committed_tenant, database_url, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIS_DATE_LOCK_TIMEOUT_MS", 300)
    tenant_id, slug = committed_tenant()
    day = future(34)
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        hold = booking.hold_date(
            tenant, package_slug=slug, addon_ids=[], on_date=day, couple=couple(1)
        )
        db.session.commit()
        payload, header = signed_event("checkout.session.completed", completed_session(hold))
    client = app.test_client()
    with psycopg.connect(database_url) as stuck:
        stuck.execute("SELECT pg_advisory_xact_lock(%s, %s)", (tenant_id, day.toordinal()))
        started = time.monotonic()
        # A 500 makes the provider deliver again; nothing of the attempt stays but the failure.
        assert post_event(client, payload, header).status_code == 500
        assert time.monotonic() - started < 3
    with app.app_context(), platform_scope("the test reads the recorded event"):
        event_id = json.loads(payload)["id"]
        status = db.session.scalar(
            select(WebhookEvent.status).where(WebhookEvent.provider_event_id == event_id)
        )
        assert status == "failed"
    assert post_event(client, payload, header).status_code == 200
    with app.app_context(), tenant_scope(tenant_id):
        assert db.session.scalar(select(Booking.on_date)) == day


@pytest.fixture
def lock_free_refunds(app, monkeypatch):
    """Every refund the mock provider is asked for, with the number of advisory locks any
    connection held on the tenant's dates at that moment."""
    calls: list[tuple[str, int]] = []
    original = MockProvider.refund
    database_url = app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg", "")

    def spy(self: MockProvider, *, payment_intent_id: str, idempotency_key: str) -> str:
        with psycopg.connect(database_url) as observer:
            (locks,) = observer.execute(
                "SELECT count(*) FROM pg_locks JOIN pg_database d ON d.oid = pg_locks.database "
                "WHERE locktype = 'advisory' AND objsubid = 2 AND d.datname = %s",
                (database_url.rsplit("/", 1)[1],),
            ).fetchone()
        calls.append((idempotency_key, locks))
        return original(self, payment_intent_id=payment_intent_id, idempotency_key=idempotency_key)

    monkeypatch.setattr(MockProvider, "refund", spy)
    return calls


@pytest.mark.committed
def test_no_refund_is_asked_for_while_a_date_is_locked(app, committed_tenant, lock_free_refunds):
    tenant_id, slug = committed_tenant()
    day = future(61)
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        late = booking.hold_date(
            tenant, package_slug=slug, addon_ids=[], on_date=day, couple=couple(1)
        )
        db.session.commit()
        db.session.execute(
            update(DateHold).where(DateHold.id == late.id).values(expires_at=late.created_at)
        )
        db.session.commit()
        first = booking.hold_date(
            tenant, package_slug=slug, addon_ids=[], on_date=day, couple=couple(2)
        )
        db.session.commit()
        booking_id = booking.confirm_paid_hold(
            tenant, first.id, checkout_session_id="cs_a", payment_intent_id="pi_a"
        )
        db.session.commit()
        late_id = late.id
        # The late couple pays for a date sold meanwhile: refunded, after the lock is gone.
        payload, header = signed_event("checkout.session.completed", completed_session(late))
    client = app.test_client()
    assert post_event(client, payload, header).status_code == 200
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        cancelled = booking.cancel_booking(tenant, booking_id, refund=True)
        unit_of_work.commit()  # as the request does when it answers
        assert (cancelled.status, cancelled.is_refund_owed) == (BookingStatus.REFUNDED, False)
        assert cancelled.refund_id
        refunded = db.session.get(DateHold, late_id)
        assert (refunded.status, refunded.is_refund_owed) == (HoldStatus.REFUNDED, False)
        assert refunded.refund_id
    assert lock_free_refunds == [(f"lost-hold-{late_id}", 0), (f"cancel-booking-{booking_id}", 0)]


@pytest.mark.committed
def test_a_refund_the_provider_did_not_answer_is_issued_by_the_sweep_once(
    app, committed_tenant, monkeypatch
):
    tenant_id, slug = committed_tenant()
    asked: list[str] = []

    def down(self: MockProvider, *, payment_intent_id: str, idempotency_key: str) -> str:
        raise ConnectionError("the provider did not answer")

    monkeypatch.setattr(MockProvider, "refund", down)
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        hold = booking.hold_date(
            tenant, package_slug=slug, addon_ids=[], on_date=future(62), couple=couple(1)
        )
        db.session.commit()
        booking_id = booking.confirm_paid_hold(
            tenant, hold.id, checkout_session_id="cs_b", payment_intent_id="pi_b"
        )
        db.session.commit()
        cancelled = booking.cancel_booking(tenant, booking_id, refund=True)
        unit_of_work.commit()  # as the request does when it answers
        # The cancellation stands (the date is free); the refund is owed, not lost.
        assert (cancelled.status, cancelled.is_refund_owed) == (BookingStatus.REFUNDED, True)

    def answers(self: MockProvider, *, payment_intent_id: str, idempotency_key: str) -> str:
        asked.append(idempotency_key)
        return f"re_{idempotency_key}"

    monkeypatch.setattr(MockProvider, "refund", answers)
    with app.app_context():
        owed_here = [r for r in refunds.owed_refunds() if r.tenant_id == tenant_id]
        assert [r.row_id for r in owed_here] == [booking_id]
        refunds.issue_owed_refunds()
        refunds.issue_owed_refunds()
        with tenant_scope(tenant_id):
            settled = db.session.get(Booking, booking_id)
            assert (settled.refund_id, settled.is_refund_owed) == (
                f"re_cancel-booking-{booking_id}",
                False,
            )
    assert asked.count(f"cancel-booking-{booking_id}") == 1
