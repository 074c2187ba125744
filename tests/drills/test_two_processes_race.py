"""Two application processes on one PostgreSQL: 500 Pay presses for one date, split across both.
Exactly one hold; every other answer is a clear conflict; no server error."""

from __future__ import annotations

import itertools
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from sqlalchemy import func, select

from mais.extensions import db
from mais.models import DateHold
from mais.tenancy import tenant_scope
from tests.drills.http import send
from tests.factories import make_package, make_tenant
from widget.state import Selection, sign_selection

ATTEMPTS = 500


def test_500_pay_presses_for_one_date_across_two_processes(drill_app, app_processes):
    on_date = date.today() + timedelta(days=60)
    with drill_app.app_context():
        tenant = make_tenant()
        make_package(tenant, "Courthouse", slug="courthouse", price_cents=120000)
        db.session.commit()
        tenant_id, slug = tenant.id, tenant.slug
        bodies = [
            urllib.parse.urlencode(
                {
                    "s": sign_selection(
                        tenant_id,
                        Selection("courthouse", (), on_date).with_couple(
                            {"couple_name": f"Couple {n}", "email": f"c{n}@example.com"}
                        ),
                    )
                }
            ).encode()
            for n in range(ATTEMPTS)
        ]
    targets = itertools.cycle(f"{p.base_url}/book/{slug}/pay" for p in app_processes)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda body: send("POST", next(targets), body, headers), bodies))

    statuses = Counter(answer.status for answer in answers)
    # 303: sent to the checkout; 409: "This date was just taken" with other dates offered.
    assert statuses == {303: 1, 409: ATTEMPTS - 1}, statuses
    conflict = next(a for a in answers if a.status == 409)
    assert "just taken" in conflict.body or "no longer available" in conflict.body.lower()
    with drill_app.app_context(), tenant_scope(tenant_id):
        holds = db.session.scalar(
            select(func.count()).select_from(DateHold).where(DateHold.on_date == on_date)
        )
    assert holds == 1
