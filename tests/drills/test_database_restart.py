"""The database restarts in the middle of a run: the application answers 503 meanwhile rather
than hanging, recovers without a restart of its own, and no paid booking is lost (every completed
payment ends as a booking or a refund)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app import create_app
from mais import booking
from mais.extensions import db
from mais.models import Booking, DateHold, HoldStatus
from mais.tenancy import tenant_scope
from tests.drills.conftest import stripe_event
from tests.drills.harness import AppProcess, ThrowawayPostgres, migrate
from tests.drills.http import send
from tests.factories import make_package, make_tenant
from tests.support import app_config

PAYMENTS = 40


@pytest.fixture
def restartable(tmp_path):
    cluster = ThrowawayPostgres().init()
    url = cluster.create_database("mais_restart")
    mail_dir = tmp_path / "mail"
    migrate(url, mail_dir)
    application = create_app(app_config(url, tmp_path, MAIS_MAIL_DIR=str(mail_dir)))
    server = AppProcess(url, mail_dir).start()
    yield cluster, application, server
    server.stop()
    with application.app_context():
        db.engine.dispose()
    cluster.destroy()


def test_database_restart_mid_run(restartable, signed):
    cluster, application, server = restartable
    with application.app_context():
        tenant = make_tenant()
        make_package(tenant, "Courthouse", slug="courthouse", price_cents=120000)
        db.session.commit()
        tenant_id = tenant.id
        couple = booking.validate_couple("Ada", "", "ada@example.com", "")
        start = date.today() + timedelta(days=30)
        hold_ids = [
            booking.hold_date(
                tenant,
                package_slug="courthouse",
                addon_ids=[],
                on_date=start + timedelta(days=i),
                couple=couple,
            ).id
            for i in range(PAYMENTS)
        ]
        db.session.commit()  # as the Pay view does before it opens the checkout

    def deliver_until_accepted(hold_id: str) -> list[int]:
        """Like Stripe: redeliver on any non-2xx answer, for a bounded time."""
        payload = stripe_event(
            "checkout.session.completed",
            f"evt_restart_{hold_id}",
            {
                "id": f"cs_{hold_id}",
                "object": "checkout.session",
                "payment_intent": f"pi_{hold_id}",
                "payment_status": "paid",
                "metadata": {"tenant_id": str(tenant_id), "hold_id": hold_id},
            },
        )
        statuses = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answer = send(
                "POST", server.base_url + "/webhooks/stripe", payload, signed(payload), timeout=20
            )
            statuses.append(answer.status)
            if answer.status == 200:
                return statuses
            time.sleep(0.3)
        return statuses

    outage_answers: list[tuple[int, float]] = []
    outage_over = threading.Event()

    def outage() -> None:
        time.sleep(1.0)
        cluster.stop("immediate")
        try:
            for _ in range(5):
                answer = send("GET", server.base_url + "/health", timeout=20)
                outage_answers.append((answer.status, answer.seconds))
                time.sleep(0.3)
        finally:
            cluster.start()
            outage_over.set()

    outage_thread = threading.Thread(target=outage)
    outage_thread.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = []
        for hold_id in hold_ids:
            futures.append(pool.submit(deliver_until_accepted, hold_id))
            time.sleep(0.1)  # spread the payments across the outage
        results = [future.result() for future in futures]
    outage_thread.join()

    # While the database was down: fast 503s, no hanging.
    assert outage_answers and all(status == 503 for status, _ in outage_answers), outage_answers
    assert max(seconds for _, seconds in outage_answers) < 6
    # Some payments really hit the outage, and every answer then was a clean "retry later".
    assert any(statuses[0] != 200 for statuses in results), "no delivery hit the outage"
    assert {s for statuses in results for s in statuses} <= {200, 500, 503}
    assert all(statuses[-1] == 200 for statuses in results), results

    # The same server process recovered by itself.
    assert send("GET", server.base_url + "/health").status == 200
    with application.app_context():
        db.engine.dispose()
        with tenant_scope(tenant_id):
            holds = db.session.scalars(select(DateHold).where(DateHold.id.in_(hold_ids))).all()
            booked = set(db.session.scalars(select(Booking.hold_id)).all())
    assert {hold.status for hold in holds} <= {HoldStatus.CONVERTED, HoldStatus.REFUNDED}
    assert all(h.id in booked for h in holds if h.status == HoldStatus.CONVERTED)
    assert len(booked) == PAYMENTS  # all dates were distinct: every payment became a booking
