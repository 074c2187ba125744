"""Owner pages whose cost must not grow with a tenant's history: the chart's monthly buckets are
counted by the database, the iCal feed holds a year back onward and is built once per change,
and the bookings list counts its rows only a few pages ahead."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from mais import dashboard
from mais.extensions import db
from mais.tenant_registry import local_today
from tests.factories import make_package

from .conftest import make_booking


def test_the_charts_buckets_are_the_bookings_made_each_month_paid_or_refunded(tenant):
    package = make_package(tenant)
    today = date(2026, 5, 20)
    made = [
        datetime(2025, 5, 31, 23, 59, 59, tzinfo=UTC),  # the month before the chart: left out
        datetime(2025, 6, 1, 0, 0, 0, tzinfo=UTC),
        datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC),
        datetime(2025, 12, 31, 23, 30, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
        datetime(2026, 3, 15, 12, tzinfo=UTC),
        datetime(2026, 3, 16, 12, tzinfo=UTC),
        datetime(2026, 5, 1, tzinfo=UTC),
        datetime(2026, 5, 19, 22, tzinfo=UTC),
    ]
    for n, created_at in enumerate(made):
        make_booking(
            tenant,
            package,
            date(2027, 1, 1) + timedelta(days=n),
            status="refunded" if n % 2 else "confirmed",
            created_at=created_at,
        )

    buckets = dashboard.bookings_per_month(tenant, today=today)

    in_python = Counter(date(at.year, at.month, 1) for at in made)
    assert [month for month, _ in buckets][0] == date(2025, 6, 1)
    assert [month for month, _ in buckets][-1] == date(2026, 5, 1)
    assert buckets == [(month, in_python.get(month, 0)) for month, _ in buckets]
    assert sum(count for _, count in buckets) == len(made) - 1
    bars = dashboard.build_dashboard(tenant, today=today).bars
    assert [bar.count for bar in bars] == [count for _, count in buckets]


def test_the_ical_feed_starts_a_year_back_and_is_built_once_per_change(client, tenant):
    package = make_package(tenant, "Lighthouse")
    today = local_today(tenant)
    make_booking(tenant, package, today - timedelta(days=400), couple_name="Too Old")
    make_booking(tenant, package, today - timedelta(days=300), couple_name="Last Summer")
    soon = make_booking(tenant, package, today + timedelta(days=30), couple_name="Grace Hopper")
    feed = f"/portal/ical/{tenant.ical_export_token}.ics"

    body = client.get(feed).get_data(as_text=True)
    assert "Last Summer" in body and "Grace Hopper" in body
    assert "Too Old" not in body

    # A write that bypasses every listener (as no code of MAIS does) shows that polls are
    # answered from the cache, not by reading the bookings again.
    db.session.execute(
        text("UPDATE bookings SET couple_name = 'Renamed Quietly' WHERE id = :id"),
        {"id": soon.id},
    )
    assert "Grace Hopper" in client.get(feed).get_data(as_text=True)

    # A booking written by MAIS bumps the tenant's generation: the next poll is rebuilt.
    make_booking(tenant, package, today + timedelta(days=31), couple_name="Ada Lovelace")
    body = client.get(feed).get_data(as_text=True)
    assert "Ada Lovelace" in body and "Renamed Quietly" in body


def pager(html: str) -> str:
    return re.search(r"<span>(Page [^<]+)</span>", html).group(1)


def test_the_bookings_list_counts_only_a_few_pages_ahead(owner, tenant, monkeypatch):
    monkeypatch.setattr(dashboard, "COUNT_AHEAD_PAGES", 2)
    package = make_package(tenant)
    for n in range(45):
        make_booking(tenant, package, date(2027, 1, 1) + timedelta(days=n), status="cancelled")

    first = owner.get("/portal/bookings?filter=cancelled").get_data(as_text=True)
    assert pager(first) == "Page 1 of 2 or more"
    assert 'rel="next"' in first

    last = owner.get("/portal/bookings?filter=cancelled&page=3").get_data(as_text=True)
    assert pager(last) == "Page 3 of 3"
    assert 'rel="next"' not in last
    assert last.count("/portal/bookings/") >= 5  # the five oldest-dated, on the last page

    beyond = owner.get("/portal/bookings?filter=cancelled&page=99").get_data(as_text=True)
    assert pager(beyond) == "Page 3 of 3"
