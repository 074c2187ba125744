"""One Stripe event delivered 20 times, concurrently across two application processes and
interleaved with its ``expired`` twin: its effects happen exactly once."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from sqlalchemy import func, select

from mais import booking
from mais.extensions import db
from mais.models import Booking, DateHold, HoldStatus, OutboxMessage
from mais.tenancy import platform_scope, tenant_scope
from tests.drills.conftest import stripe_event
from tests.drills.http import send
from tests.factories import make_package, make_tenant


def _paid_hold(drill_app, on_date: date) -> tuple[int, str]:
    with drill_app.app_context():
        tenant = make_tenant()
        make_package(tenant, "Courthouse", slug="courthouse", price_cents=120000)
        db.session.commit()
        couple = booking.validate_couple("Ada Lovelace", "Charles", "ada@example.com", "")
        hold = booking.hold_date(
            tenant, package_slug="courthouse", addon_ids=[], on_date=on_date, couple=couple
        )
        ids = tenant.id, hold.id
        db.session.commit()  # as the Pay view does before it opens the checkout
        return ids


def test_redelivered_event_and_its_expired_twin_take_effect_once(drill_app, app_processes, signed):
    tenant_id, hold_id = _paid_hold(drill_app, date.today() + timedelta(days=40))
    session_object = {
        "id": f"cs_drill_{hold_id}",
        "object": "checkout.session",
        "payment_intent": f"pi_drill_{hold_id}",
        "payment_status": "paid",
        "status": "complete",
        "metadata": {"tenant_id": str(tenant_id), "hold_id": hold_id},
    }
    completed = stripe_event("checkout.session.completed", f"evt_c_{hold_id}", session_object)
    expired = stripe_event(
        "checkout.session.expired",
        f"evt_e_{hold_id}",
        {**session_object, "payment_intent": None, "payment_status": "unpaid", "status": "expired"},
    )
    deliveries = list(
        itertools.chain.from_iterable(zip([completed] * 20, [expired] * 20, strict=True))
    )
    targets = itertools.cycle(process.base_url for process in app_processes)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(
            pool.map(
                lambda item: send("POST", next(targets) + "/webhooks/stripe", item, signed(item)),
                deliveries,
            )
        )

    assert [a.status for a in answers if a.status != 200] == []
    with drill_app.app_context(), tenant_scope(tenant_id):
        bookings = db.session.scalars(select(Booking).where(Booking.hold_id == hold_id)).all()
        assert len(bookings) == 1
        hold = db.session.get(DateHold, hold_id)
        assert hold.status == HoldStatus.CONVERTED
        booking_id = bookings[0].id
    with drill_app.app_context(), platform_scope("drill: counting the booking's mail"):
        mails = db.session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.dedup_key.like(f"booking-%:{booking_id}%"))
        )
        assert mails == 2  # the couple's confirmation and the owner's notice, once each
