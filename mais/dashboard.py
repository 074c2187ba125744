"""The owner's view of the business: the dashboard figures and chart, bookings, the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select

from .extensions import db
from .models import AuditLog, Booking, BookingStatus, Tenant
from .tenancy import get_owned_or_404, tenant_operation

CHART_WIDTH = 600
CHART_HEIGHT = 220
CHART_TOP = 20
CHART_BOTTOM = 30  # room for the month labels


@dataclass(frozen=True)
class MonthBar:
    label: str  # "Mar"
    title: str  # "March 2026"
    count: int
    x: float
    y: float
    width: float
    height: float

    @property
    def label_x(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Dashboard:
    upcoming: list[Booking]
    revenue_cents: int
    commission_cents: int
    month_title: str
    bars: list[MonthBar]
    max_count: int

    @property
    def payout_cents(self) -> int:
        return self.revenue_cents - self.commission_cents

    @property
    def total_last_year(self) -> int:
        return sum(bar.count for bar in self.bars)


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def chart_bars(counts: list[tuple[date, int]]) -> tuple[list[MonthBar], int]:
    """Geometry of a bar chart of ``counts`` (month start, count) in a CHART_WIDTH box."""
    max_count = max([count for _, count in counts] + [1])
    slot = CHART_WIDTH / len(counts)
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    bars = []
    for index, (month, count) in enumerate(counts):
        height = plot_height * count / max_count
        bars.append(
            MonthBar(
                label=f"{month:%b}",
                title=f"{month:%B %Y}",
                count=count,
                x=round(index * slot + slot * 0.15, 1),
                y=round(CHART_TOP + plot_height - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
            )
        )
    return bars, max_count


@tenant_operation
def build_dashboard(tenant: Tenant, *, today: date | None = None) -> Dashboard:
    today = today or datetime.now(UTC).date()
    month_start = datetime.combine(_month_start(today), datetime.min.time(), UTC)
    upcoming = list(
        db.session.scalars(
            select(Booking)
            .where(Booking.status == BookingStatus.CONFIRMED, Booking.on_date >= today)
            .order_by(Booking.on_date)
            .limit(5)
        )
    )
    revenue, commission = db.session.execute(
        select(
            func.coalesce(func.sum(Booking.total_cents), 0),
            func.coalesce(func.sum(Booking.commission_cents), 0),
        ).where(Booking.status == BookingStatus.CONFIRMED, Booking.created_at >= month_start)
    ).one()

    bars, max_count = chart_bars(bookings_per_month(tenant, today=today))
    return Dashboard(
        upcoming=upcoming,
        revenue_cents=int(revenue),
        commission_cents=int(commission),
        month_title=f"{today:%B %Y}",
        bars=bars,
        max_count=max_count,
    )


def _utc_month(column: Any) -> Any:
    """``column``'s UTC month as "YYYY-MM", computed by the database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)  # SQLite stores UTC already


@tenant_operation
def bookings_per_month(tenant: Tenant, *, today: date) -> list[tuple[date, int]]:
    """Bookings made (whatever became of them) in each of the twelve months up to ``today``'s,
    oldest first: counted by the database, one row per month, however busy the tenant."""
    first_month = _month_start(today, 11)
    since = datetime.combine(first_month, datetime.min.time(), UTC)
    month = _utc_month(Booking.created_at).label("month")
    counted = {
        key: int(count)
        for key, count in db.session.execute(
            select(month, func.count()).where(Booking.created_at >= since).group_by(month)
        )
    }
    months = [_month_start(today, n) for n in range(11, -1, -1)]
    return [(start, counted.get(f"{start:%Y-%m}", 0)) for start in months]


T = TypeVar("T")
PAGE_SIZE = 20
BOOKING_FILTERS = ("upcoming", "past", "cancelled")


# A page counts its rows only this many pages past itself: enough to draw "next", and a count
# that does not grow with a tenant's whole history.
COUNT_AHEAD_PAGES = 10


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    number: int
    total: int
    size: int = PAGE_SIZE
    # False when counting stopped early: there are more than ``total`` rows.
    is_exact: bool = True

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def _paginate(query: Select, page: int, size: int = PAGE_SIZE) -> Page:
    """Page ``page`` of ``query``; the rows are counted up to COUNT_AHEAD_PAGES past it only."""
    number = max(page, 1)
    enough = (number - 1 + COUNT_AHEAD_PAGES) * size + 1
    counted = db.session.scalar(
        select(func.count()).select_from(query.order_by(None).limit(enough).subquery())
    )
    total = min(counted or 0, enough - 1)
    number = min(number, max(1, -(-total // size)))
    items = list(db.session.scalars(query.limit(size).offset((number - 1) * size)))
    return Page(items=items, number=number, total=total, size=size, is_exact=counted < enough)


@tenant_operation
def list_bookings(
    tenant: Tenant, *, which: str = "upcoming", page: int = 1, today: date | None = None
) -> Page[Booking]:
    """The owner's bookings: upcoming and past confirmed ones, or cancelled/refunded ones."""
    today = today or datetime.now(UTC).date()
    query = select(Booking)
    if which == "cancelled":
        query = query.where(Booking.status != BookingStatus.CONFIRMED).order_by(
            Booking.on_date.desc(), Booking.id.desc()
        )
    elif which == "past":
        query = query.where(
            Booking.status == BookingStatus.CONFIRMED, Booking.on_date < today
        ).order_by(Booking.on_date.desc(), Booking.id.desc())
    else:
        query = query.where(
            Booking.status == BookingStatus.CONFIRMED, Booking.on_date >= today
        ).order_by(Booking.on_date, Booking.id)
    return _paginate(query, page)


@tenant_operation
def get_booking(tenant: Tenant, booking_id: int) -> Booking:
    return get_owned_or_404(db.session, tenant, Booking, booking_id)


@tenant_operation
def list_audit(tenant: Tenant, *, page: int = 1) -> Page[AuditLog]:
    query = select(AuditLog).order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    return _paginate(query, page, size=50)
