"""Races across real connections: each thread has its own application context and session."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from mais import booking, unit_of_work
from mais.errors import DateUnavailable
from mais.extensions import db
from mais.models import Booking, DateHold, OutboxMessage, Tenant
from mais.tenancy import tenant_scope

from .conftest import completed_session, couple, future, post_event, signed_event

pytestmark = pytest.mark.committed


def _race(app, tenant_id, slug, dates):  # noqa: ANN001, ANN202
    """One hold attempt per date in ``dates``, all released at once; returns outcomes."""
    barrier = threading.Barrier(len(dates))

    def attempt(n: int) -> str:
        with app.app_context(), tenant_scope(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            # Give the connection back while waiting: the pool is smaller than the crowd.
            db.session.commit()
            barrier.wait()
            try:
                booking.hold_date(
                    tenant, package_slug=slug, addon_ids=[], on_date=dates[n], couple=couple(n)
                )
                db.session.commit()  # as the Pay view does before it opens the checkout
            except DateUnavailable as error:
                assert error.message == "This date was just taken."
                return "taken"
            finally:
                db.session.remove()
            return "held"

    with ThreadPoolExecutor(max_workers=len(dates)) as pool:
        return list(pool.map(attempt, range(len(dates))))


def _count(app, tenant_id, model, *where) -> int:  # noqa: ANN001
    with app.app_context(), tenant_scope(tenant_id):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_fifty_holds_on_one_date_give_exactly_one_hold(app, committed_tenant):
    tenant_id, slug = committed_tenant()
    outcomes = _race(app, tenant_id, slug, [future(20)] * 50)
    assert outcomes.count("held") == 1
    assert outcomes.count("taken") == 49
    assert _count(app, tenant_id, DateHold) == 1


def test_fifty_holds_on_fifty_dates_all_succeed(app, committed_tenant):
    tenant_id, slug = committed_tenant()
    outcomes = _race(app, tenant_id, slug, [future(20 + n) for n in range(50)])
    assert outcomes == ["held"] * 50
    assert _count(app, tenant_id, DateHold) == 50


def test_one_event_delivered_twenty_times_at_once_books_once(app, committed_tenant):
    tenant_id, slug = committed_tenant()
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        hold = booking.hold_date(
            tenant, package_slug=slug, addon_ids=[], on_date=future(40), couple=couple(1)
        )
        db.session.commit()
        payload, header = signed_event("checkout.session.completed", completed_session(hold))
    barrier = threading.Barrier(20)

    def deliver(_: int) -> int:
        client = app.test_client()
        barrier.wait()
        return post_event(client, payload, header).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(deliver, range(20)))
    assert statuses == [200] * 20
    assert _count(app, tenant_id, Booking) == 1
    with app.app_context():
        templates = sorted(
            db.session.scalars(
                select(OutboxMessage.template).where(OutboxMessage.tenant_id == tenant_id)
            )
        )
    assert templates == ["booking_confirmation", "booking_notice"]


def test_concurrent_cancellations_refund_once(app, committed_tenant, refunds):
    tenant_id, slug = committed_tenant()
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        hold = booking.hold_date(
            tenant, package_slug=slug, addon_ids=[], on_date=future(50), couple=couple(1)
        )
        booking_id = booking.confirm_paid_hold(
            tenant, hold.id, checkout_session_id="cs_x", payment_intent_id=f"pi_{hold.id}"
        )
        db.session.commit()
    barrier = threading.Barrier(5)

    def cancel(_: int) -> str:
        with app.app_context(), tenant_scope(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            db.session.commit()
            barrier.wait()
            try:
                status = str(booking.cancel_booking(tenant, booking_id, refund=True).status)
                unit_of_work.commit()  # as the request does when it answers
                return status
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(cancel, range(5)))
    assert statuses == ["refunded"] * 5
    assert len(refunds) == 1
