"""The dashboard's figures and its server-drawn chart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mais import dashboard
from tests.factories import make_package

from .conftest import make_booking


def test_figures_count_this_months_confirmed_bookings(tenant):
    package = make_package(tenant)
    today = date(2026, 5, 20)
    this_month = datetime(2026, 5, 3, tzinfo=UTC)
    make_booking(tenant, package, date(2026, 7, 1), total_cents=100000, created_at=this_month)
    make_booking(tenant, package, date(2026, 7, 2), total_cents=50000, created_at=this_month)
    make_booking(
        tenant,
        package,
        date(2026, 7, 3),
        total_cents=70000,
        created_at=this_month,
        status="cancelled",
    )
    make_booking(
        tenant,
        package,
        date(2026, 6, 1),
        total_cents=90000,
        created_at=datetime(2026, 2, 10, tzinfo=UTC),
    )
    make_booking(tenant, package, date(2026, 6, 2), created_at=datetime(2025, 1, 10, tzinfo=UTC))

    board = dashboard.build_dashboard(tenant, today=today)
    assert board.revenue_cents == 150000
    assert board.commission_cents == 12500 + 6250  # 12.5 %
    assert [b.on_date for b in board.upcoming] == [
        date(2026, 6, 1),
        date(2026, 6, 2),
        date(2026, 7, 1),
        date(2026, 7, 2),
    ]
    counts = {bar.title: bar.count for bar in board.bars}
    assert len(board.bars) == 12 and board.bars[0].title == "June 2025"
    assert counts["May 2026"] == 3 and counts["February 2026"] == 1 and sum(counts.values()) == 4
    tallest = max(board.bars, key=lambda b: b.height)
    assert tallest.title == "May 2026" and tallest.y + tallest.height == 190


def test_the_chart_is_accessible_svg_with_a_table(owner, tenant):
    make_booking(tenant, make_package(tenant), date.today() + timedelta(days=3))
    page = owner.get("/portal/").get_data(as_text=True)
    assert '<svg viewBox="0 0 600 220" role="img" aria-labelledby="chart-title chart-desc"' in page
    assert '<title id="chart-title">' in page and "<table>" in page
    assert "Ada Lovelace" in page  # upcoming
