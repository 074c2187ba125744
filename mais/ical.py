"""The tenant's external calendar: busy days imported from an iCal URL close dates; bookings are
published as a private iCal feed at a secret-token URL."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import icalendar
import requests
from flask import current_app
from sqlalchemy import select

from .audit import record_audit
from .cache import invalidate_availability
from .errors import DomainError
from .extensions import cache, db
from .models import Booking, BookingStatus, Tenant, User
from .models.base import utcnow
from .tenancy import tenant_operation

FETCH_TIMEOUT_SECONDS = (5, 10)  # connect, read
MAX_FEED_BYTES = 2 * 1024 * 1024
REFRESH_AFTER = timedelta(minutes=30)
_REFRESH_SECONDS = int(REFRESH_AFTER.total_seconds())
MAX_EVENT_DAYS = 366


class IcalImportError(Exception):
    """The feed could not be fetched or read; the message is shown to the owner."""


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
    if len(url) > 2000:
        raise DomainError("That address is too long.", field="ical_import_url")
    return url


def _check_public_host(url: str) -> None:
    """Refuse to fetch from the platform's own network (SSRF) outside development and tests."""
    if current_app.config.get("MAIS_ENV") != "production":
        return
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        raise IcalImportError(f"The calendar host {host} could not be found.") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        raise IcalImportError("The calendar address must be on the public internet.")


def _fetch(url: str) -> bytes:
    _check_public_host(url)
    try:
        response = requests.get(
            url, timeout=FETCH_TIMEOUT_SECONDS, stream=True, allow_redirects=False
        )
    except requests.Timeout:
        raise IcalImportError("The calendar did not answer in time.") from None
    except requests.RequestException:
        raise IcalImportError("The calendar could not be reached.") from None
    with response:
        if response.status_code != 200:
            raise IcalImportError(f"The calendar answered with HTTP status {response.status_code}.")
        body = b""
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > MAX_FEED_BYTES:
                raise IcalImportError("The calendar is larger than 2 MB.")
    return body


def _as_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return value.date() if value.tzinfo is None else value.astimezone().date()
    return value


def parse_busy_dates(data: bytes) -> set[date]:
    """Every day touched by an opaque, non-cancelled event."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError:
        raise IcalImportError("The address does not serve an iCal calendar.") from None
    busy: set[date] = set()
    for event in calendar.walk("VEVENT"):
        if str(event.get("TRANSP", "")).upper() == "TRANSPARENT":
            continue
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start_prop = event.get("DTSTART")
        if start_prop is None:
            continue
        start = start_prop.dt
        end_prop = event.get("DTEND")
        first = _as_date(start)
        if end_prop is None:
            last = first
        elif isinstance(start, datetime):
            # An event ending at midnight does not occupy the next day.
            last = _as_date(end_prop.dt - timedelta(microseconds=1))
        else:
            last = _as_date(end_prop.dt) - timedelta(days=1)
        last = min(max(last, first), first + timedelta(days=MAX_EVENT_DAYS))
        busy.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return busy


@tenant_operation
def refresh_import(tenant: Tenant) -> bool:
    """Fetch the feed now. On failure the last good busy days are kept and the error is stored
    for the portal. Returns whether the fetch succeeded."""
    tenant.ical_fetched_at = utcnow()
    ok = True
    if not tenant.ical_import_url:
        tenant.ical_busy_dates = []
        tenant.ical_import_error = None
    else:
        try:
            busy = parse_busy_dates(_fetch(tenant.ical_import_url))
        except IcalImportError as error:
            tenant.ical_import_error = str(error)
            ok = False
        else:
            yesterday = date.today() - timedelta(days=1)
            tenant.ical_busy_dates = sorted(d.isoformat() for d in busy if d >= yesterday)
            tenant.ical_import_error = None
    # Kept for REFRESH_AFTER even when the caller's transaction rolls back (a read-only widget
    # request), so that a feed is fetched at most once per period, not on every page view.
    cache.set(_busy_cache_key(tenant), list(tenant.ical_busy_dates or []), timeout=_REFRESH_SECONDS)
    if ok:
        invalidate_availability(tenant)
    return ok


def _busy_cache_key(tenant: Tenant) -> str:
    if not tenant.id:
        raise ValueError("the iCal cache key needs a tenant")
    return f"ical:{tenant.id}:busy"


def busy_dates(tenant: Tenant, start: date, end: date) -> set[date]:
    """Days between ``start`` and ``end`` (inclusive) that the external calendar marks busy.

    Served from the cache, else from the copy kept on the tenant; refetched when that copy is
    older than REFRESH_AFTER.
    """
    if not tenant.ical_import_url:
        return set()
    days = cache.get(_busy_cache_key(tenant))
    if days is None:
        fetched_at = tenant.ical_fetched_at
        if fetched_at is None or utcnow() - fetched_at > REFRESH_AFTER:
            refresh_import(tenant)
        else:
            cache.set(
                _busy_cache_key(tenant),
                list(tenant.ical_busy_dates or []),
                timeout=_REFRESH_SECONDS,
            )
        days = tenant.ical_busy_dates or []
    return {day for text in days if start <= (day := date.fromisoformat(text)) <= end}


@tenant_operation
def set_import_url(tenant: Tenant, url: str, *, user: User | None = None) -> bool:
    tenant.ical_import_url = validate_import_url(url)
    record_audit(
        tenant,
        "settings.ical_import",
        "tenant",
        tenant.id,
        user=user,
        details={"url_set": bool(tenant.ical_import_url)},
    )
    db.session.flush()
    return refresh_import(tenant)


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
    """Confirmed bookings as all-day events, for the owner's own calendar app."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//MAIS//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{tenant.name} bookings")
    bookings = db.session.scalars(
        select(Booking).where(Booking.status == BookingStatus.CONFIRMED).order_by(Booking.on_date)
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
