"""The tenant's external calendar: busy days imported from an iCal URL close dates; bookings are
published as a private iCal feed at a secret-token URL.

Importing happens off the request path (``flask mais sync-calendars``): the feed is fetched through
``mais.outbound`` (public addresses only, size and time capped), conditionally when the last
answer carried an ETag or Last-Modified, and expanded with ``recurring-ical-events`` into the
tenant-local days it occupies over the booking horizon. Availability reads only what the last
sync stored.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from flask import current_app
from sqlalchemy import select

from . import outbound
from .audit import record_audit
from .cache import AVAILABILITY, get_or_set, invalidate_availability
from .errors import DomainError
from .extensions import db
from .models import Booking, BookingStatus, Tenant, User
from .models.base import utcnow
from .tenancy import tenant_operation
from .tenant_registry import local_today, tenant_zone

# Expanded this far past the horizon, so that the horizon moving a day does not force a full
# download every day: a conditional request suffices until the stored days run short.
HORIZON_MARGIN_DAYS = 31
# A feed that expands to more occurrences than this over the horizon is refused rather than
# imported in part (a part would leave busy days open).
MAX_OCCURRENCES = 50_000
MAX_VALIDATOR_LENGTH = 1000
# The export feed holds bookings from this many days ago onward: what a calendar app shows, not
# a history that grows every year.
EXPORT_DAYS_BACK = 365
EXPORT_CACHE_SECONDS = 24 * 3600


class IcalImportError(Exception):
    """The feed could not be read; the message is shown to the owner."""


def validate_import_url(url: str) -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    if url.startswith("webcal://"):
        url = "https://" + url.removeprefix("webcal://")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DomainError(
            "Enter the calendar's address, starting with https:// (or webcal://).",
            field="ical_import_url",
        )
    if parts.username or parts.password:
        raise DomainError(
            "Use the calendar's secret address, without a user name or password in it.",
            field="ical_import_url",
        )
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise DomainError("The address has an invalid port.", field="ical_import_url") from None
    if len(url) > 2000:
        raise DomainError("That address is too long.", field="ical_import_url")
    return url


# --- Expansion --------------------------------------------------------------------------------


def _is_free(event: icalendar.Event) -> bool:
    """Cancelled instances and time marked free (Outlook writes both TRANSP and its own flag)."""
    return (
        str(event.get("STATUS", "")).upper() == "CANCELLED"
        or str(event.get("TRANSP", "")).upper() == "TRANSPARENT"
        or str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper() == "FREE"
    )


def _local(value: datetime, zone: ZoneInfo) -> datetime:
    # A floating time (no zone, no Z) means the same wall-clock time wherever one is: the
    # tenant's own.
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def occupied_days(
    start: date | datetime, end: date | datetime, zone: ZoneInfo
) -> tuple[date, date]:
    """The first and last tenant-local day an occurrence from ``start`` to ``end`` overlaps.

    All-day events are dates, the same in every zone, ending the day before DTEND. A timed event
    occupies each local day it overlaps; one ending exactly at local midnight does not occupy the
    next day, and one of no length occupies the day it happens on.
    """
    if not isinstance(start, datetime):
        last = end if not isinstance(end, datetime) else end.date()
        return start, max(start, last - timedelta(days=1))
    local_start = _local(start, zone)
    local_end = (
        _local(end, zone)
        if isinstance(end, datetime)
        else _local(datetime.combine(end, datetime.min.time()), zone)
    )
    if local_end <= local_start:
        return local_start.date(), local_start.date()
    return local_start.date(), (local_end - timedelta(microseconds=1)).date()


def _too_frequent(calendar: icalendar.Calendar) -> bool:
    """Rules repeating by the second or minute: no one's calendar has them, and expanding one from
    a DTSTART years back would keep the sync busy for minutes before reaching the horizon."""
    for event in calendar.walk("VEVENT"):
        rules = event.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules] if rules else []:
            if {str(f).upper() for f in rule.get("FREQ", [])} & {"SECONDLY", "MINUTELY"}:
                return True
    return False


def expand_busy_days(data: bytes, zone: ZoneInfo, first: date, last: date) -> set[date]:
    """Every tenant-local day from ``first`` to ``last`` that an opaque, non-cancelled occurrence
    of the feed overlaps: recurrences (RRULE, RDATE, EXDATE, moved and cancelled instances),
    DURATION, all-day and timed, multi-day and overnight events."""
    # Everything below reads a stranger's file: whatever the libraries cannot read is a message
    # for the owner, never a crash of the sync.
    try:
        calendar = icalendar.Calendar.from_ical(data)
        if calendar.name != "VCALENDAR":
            raise ValueError("not a calendar")
        if _too_frequent(calendar):
            raise IcalImportError(
                "The calendar has an event repeating every minute or second; MAIS cannot import it."
            )
        query = recurring_ical_events.of(calendar, skip_bad_series=True)
    except IcalImportError:
        raise
    except Exception:  # noqa: BLE001
        raise IcalImportError(
            "The address does not serve an iCal calendar MAIS can read."
        ) from None
    # A day either side of the window: the library compares naive bounds in each event's own
    # zone, which may be up to a day away from the tenant's.
    span = (
        datetime.combine(first - timedelta(days=1), datetime.min.time()),
        datetime.combine(last + timedelta(days=2), datetime.min.time()),
    )
    busy: set[date] = set()
    count = 0
    for series in query.series:
        # One event the library cannot expand is skipped, as calendar apps skip it; the rest
        # of the feed still closes its days.
        with contextlib.suppress(*query.suppressed_errors, ValueError, TypeError, OverflowError):
            for occurrence in series.between(*span):
                count += 1
                if count > MAX_OCCURRENCES:
                    raise IcalImportError(
                        "The calendar has too many events to import; share a smaller calendar."
                    )
                event = occurrence.as_component(False)
                if _is_free(event):
                    continue
                begins, ends = occupied_days(occurrence.start, occurrence.end, zone)
                day = max(begins, first)
                while day <= min(ends, last):
                    busy.add(day)
                    day += timedelta(days=1)
    return busy


# --- Sync ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncPlan:
    """What one sync asks for, read from the tenant before any network traffic."""

    tenant_id: int
    url: str
    zone: ZoneInfo
    first: date  # yesterday, tenant-local
    last: date  # the horizon plus a margin
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class SyncResult:
    busy: list[str] | None  # None: the feed is unchanged (or could not be read)
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None


def plan_sync(tenant: Tenant) -> SyncPlan | None:
    if not tenant.ical_import_url:
        return None
    first = local_today(tenant) - timedelta(days=1)
    needed = first + timedelta(days=1 + tenant.booking_horizon_days)
    covered = tenant.ical_busy_through is not None and tenant.ical_busy_through >= needed
    return SyncPlan(
        tenant_id=tenant.id,
        url=tenant.ical_import_url,
        zone=tenant_zone(tenant),
        first=first,
        last=needed + timedelta(days=HORIZON_MARGIN_DAYS),
        # "Unchanged" is only good enough while the stored days still reach the horizon.
        etag=tenant.ical_etag if covered else None,
        last_modified=tenant.ical_last_modified if covered else None,
    )


def _validator(value: str | None) -> str | None:
    return value if value and len(value) <= MAX_VALIDATOR_LENGTH else None


def fetch_feed(plan: SyncPlan) -> SyncResult:
    """Fetch and expand the feed. Touches no database, so no transaction waits on the network."""
    try:
        answer = outbound.fetch(plan.url, etag=plan.etag, last_modified=plan.last_modified)
        if answer.status == 304:
            return SyncResult(None, plan.etag, plan.last_modified)
        days = expand_busy_days(answer.body, plan.zone, plan.first, plan.last)
    except (outbound.OutboundError, IcalImportError) as error:
        return SyncResult(None, error=str(error))
    return SyncResult(
        sorted(day.isoformat() for day in days),
        _validator(answer.etag),
        _validator(answer.last_modified),
    )


@tenant_operation
def store_sync(tenant: Tenant, plan: SyncPlan, result: SyncResult) -> bool:
    """Keep what ``fetch_feed`` found. On failure the last good busy days stay and the error is
    kept for the portal. Returns whether the sync succeeded."""
    if tenant.ical_import_url != plan.url or tenant_zone(tenant) != plan.zone:
        # The owner changed the address or the zone while the feed was read: the next sync
        # reads the new one.
        return False
    now = utcnow()
    tenant.ical_sync_attempted_at = now
    if result.error is not None:
        tenant.ical_import_error = result.error
        return False
    tenant.ical_import_error = None
    tenant.ical_synced_at = now
    if result.busy is not None:
        tenant.ical_busy_dates = result.busy
        tenant.ical_busy_through = plan.last
    tenant.ical_etag, tenant.ical_last_modified = result.etag, result.last_modified
    db.session.flush()
    invalidate_availability(tenant)
    return True


@tenant_operation
def sync_calendar(tenant: Tenant) -> bool:
    """Fetch and store in one go, for a caller that holds no lock while it runs."""
    plan = plan_sync(tenant)
    if plan is None:
        return False
    return store_sync(tenant, plan, fetch_feed(plan))


def busy_dates(tenant: Tenant, start: date, end: date) -> set[date]:
    """Days between ``start`` and ``end`` (inclusive) that the last sync found busy. Never
    fetches: a couple never waits on another server."""
    if not tenant.ical_import_url or not tenant.ical_busy_dates:
        return set()
    low, high = start.isoformat(), end.isoformat()
    return {date.fromisoformat(day) for day in tenant.ical_busy_dates if low <= day <= high}


@tenant_operation
def set_import_url(tenant: Tenant, url: str, *, user: User | None = None) -> bool:
    """Save the address; the sync reads it within minutes. Returns whether it changed."""
    new_url = validate_import_url(url)
    if new_url == tenant.ical_import_url:
        return False
    tenant.ical_import_url = new_url
    # Days of another calendar (or of none) must not close dates, and its validators must not
    # make the new address look unchanged.
    tenant.ical_busy_dates = []
    tenant.ical_busy_through = None
    tenant.ical_etag = tenant.ical_last_modified = None
    tenant.ical_import_error = None
    tenant.ical_sync_attempted_at = tenant.ical_synced_at = None
    record_audit(
        tenant,
        "settings.ical_import",
        "tenant",
        tenant.id,
        user=user,
        details={"url_set": bool(tenant.ical_import_url)},
    )
    db.session.flush()
    invalidate_availability(tenant)
    return True


def forget_synced_days_window(tenant: Tenant) -> None:
    """The stored days were computed in another zone: the next sync reads the whole feed again
    (they keep closing dates meanwhile, off by at most the zones' difference)."""
    tenant.ical_busy_through = None
    tenant.ical_etag = tenant.ical_last_modified = None


@tenant_operation
def rotate_export_token(tenant: Tenant, *, user: User | None = None) -> str:
    tenant.ical_export_token = secrets.token_urlsafe(32)
    record_audit(tenant, "settings.ical_export_rotate", "tenant", tenant.id, user=user)
    db.session.flush()
    return tenant.ical_export_token


def find_tenant_by_export_token(token: str) -> Tenant | None:
    if not token or len(token) < 20:
        return None
    return db.session.scalar(select(Tenant).where(Tenant.ical_export_token == token))


@tenant_operation
def export_feed(tenant: Tenant) -> bytes:
    """Confirmed bookings from a year ago onward as all-day events, for the owner's own calendar
    app. Calendar apps poll it every few minutes, so it is built once per change: cached under
    the tenant's availability generation, which every booking write (and a tenant rename) bumps,
    and per day, since the window moves at midnight."""
    first_day = local_today(tenant) - timedelta(days=EXPORT_DAYS_BACK)
    return get_or_set(
        tenant,
        AVAILABILITY,
        ("ical-export", first_day.isoformat()),
        lambda: _build_feed(tenant, first_day),
        timeout=EXPORT_CACHE_SECONDS,
    )


def _build_feed(tenant: Tenant, first_day: date) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//MAIS//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{tenant.name} bookings")
    bookings = db.session.scalars(
        select(Booking)
        .where(Booking.status == BookingStatus.CONFIRMED, Booking.on_date >= first_day)
        .order_by(Booking.on_date)
    )
    stamp = utcnow()
    host = urlsplit(current_app.config["MAIS_BASE_URL"]).hostname or "mais"
    for booking in bookings:
        event = icalendar.Event()
        event.add("uid", f"booking-{booking.reference}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", booking.on_date)
        event.add("dtend", booking.on_date + timedelta(days=1))
        event.add("summary", f"{booking.package_title}: {booking.couple_name}")
        event.add("description", f"Booking {booking.reference}, {booking.email}")
        calendar.add_component(event)
    return calendar.to_ical()
