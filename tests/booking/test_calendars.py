"""External calendars: Google and Outlook feeds close exactly the owner's busy days, counted in
the tenant's own zone; the sync runs in the command, never while a couple waits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from werkzeug import Request, Response

from mais import booking, ical
from mais.extensions import db
from mais.models import Tenant
from mais.tenancy import tenant_scope
from mais.tenant_registry import local_today
from tests.factories import make_tenant

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ical"
GOOGLE = (FIXTURES / "google_studio.ics").read_bytes()
OUTLOOK = (FIXTURES / "outlook_exchange.ics").read_bytes()
MARCH = (date(2030, 3, 1), date(2030, 3, 31))


def march(*days: int) -> set[date]:
    return {date(2030, 3, day) for day in days}


@pytest.mark.parametrize(
    ("zone", "busy"),
    [
        # Weekly 19:00-22:00 (DURATION) on Saturdays from Mar 2: the 9th moved to the 10th, the
        # 16th excluded (EXDATE), the 23rd cancelled, an extra one on the 7th (RDATE); a call
        # ending exactly at midnight in Los Angeles (Mar 5), written in UTC; a night shoot
        # 23:00-01:00 (12th-13th); a three-day trip (20-22); a free day and a cancelled event.
        ("America/Los_Angeles", march(2, 5, 7, 10, 12, 13, 20, 21, 22, 30)),
        # The same evenings are the next morning in Berlin; the night shoot is one morning.
        ("Europe/Berlin", march(3, 6, 8, 11, 13, 20, 21, 22, 31)),
    ],
)
def test_a_google_calendar_closes_exactly_the_busy_days_of_the_tenants_zone(zone, busy):
    assert ical.expand_busy_days(GOOGLE, ZoneInfo(zone), *MARCH) == busy


@pytest.mark.parametrize(
    ("zone", "busy"),
    [
        # Office Mondays 09:00-17:00 Berlin time (the 11th excluded, until the 25th), a free
        # gym slot, an overnight drive 23:00-01:00 Pacific (8th-9th), an all-day holiday
        # (14th), a dinner ending at Berlin midnight (15th), a tentative all-day shoot (27th).
        ("Europe/Berlin", march(4, 9, 14, 15, 18, 25, 27)),
        ("America/Los_Angeles", march(4, 8, 9, 14, 15, 18, 25, 27)),
        # Berlin's working day runs into the next morning in Auckland.
        ("Pacific/Auckland", march(4, 5, 9, 14, 16, 18, 19, 25, 26, 27)),
    ],
)
def test_an_outlook_calendar_with_windows_zone_names_closes_the_busy_days(zone, busy):
    assert ical.expand_busy_days(OUTLOOK, ZoneInfo(zone), *MARCH) == busy


def test_expansion_stays_inside_the_window():
    zone = ZoneInfo("America/Los_Angeles")
    assert date(2030, 4, 15) not in ical.expand_busy_days(GOOGLE, zone, *MARCH)
    assert date(2030, 4, 15) in ical.expand_busy_days(GOOGLE, zone, MARCH[0], date(2030, 4, 30))
    later = ical.expand_busy_days(GOOGLE, zone, date(2030, 3, 11), MARCH[1])
    assert later == march(12, 13, 20, 21, 22, 30)


def test_a_timed_event_closes_every_local_day_it_overlaps():
    berlin = ZoneInfo("Europe/Berlin")
    night = (datetime(2030, 6, 1, 23, 0, tzinfo=berlin), datetime(2030, 6, 2, 1, 0, tzinfo=berlin))
    assert ical.occupied_days(*night, berlin) == (date(2030, 6, 1), date(2030, 6, 2))
    to_midnight = (
        datetime(2030, 6, 1, 20, 0, tzinfo=berlin),
        datetime(2030, 6, 2, 0, 0, tzinfo=berlin),
    )
    assert ical.occupied_days(*to_midnight, berlin) == (date(2030, 6, 1), date(2030, 6, 1))
    # The same evening, written in UTC, is the next morning in Auckland.
    assert ical.occupied_days(*night, ZoneInfo("Pacific/Auckland")) == (
        date(2030, 6, 2),
        date(2030, 6, 2),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>Sign in</html>", "does not serve an iCal calendar"),
        (b"", "does not serve an iCal calendar"),
        (
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n"
            b"DTSTART:20300101T000000Z\r\nDTEND:20300101T000100Z\r\nRRULE:FREQ=SECONDLY\r\n"
            b"END:VEVENT\r\nEND:VCALENDAR\r\n",
            "every minute or second",
        ),
    ],
)
def test_a_feed_that_cannot_be_read_is_a_message_not_a_crash(body, message):
    with pytest.raises(ical.IcalImportError, match=message):
        ical.expand_busy_days(body, ZoneInfo("UTC"), *MARCH)


def test_the_tenants_today_is_the_day_in_its_zone(app_ctx):
    tenant = make_tenant()
    instant = datetime(2030, 1, 1, 5, 0, tzinfo=UTC)
    for zone, day in [
        ("America/Los_Angeles", date(2029, 12, 31)),
        ("Europe/Berlin", date(2030, 1, 1)),
        ("Pacific/Auckland", date(2030, 1, 1)),
    ]:
        tenant.time_zone = zone
        assert local_today(tenant, instant) == day


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_past_and_today_are_the_tenants_days_in_the_api(client, app_ctx, zone):
    # At any moment one of these two zones (UTC+14, UTC-11) is on another day than UTC.
    tenant = make_tenant()
    tenant.time_zone = zone
    db.session.commit()
    local = datetime.now(ZoneInfo(zone)).date()
    response = client.get(
        f"/v1/availability?from={local - timedelta(days=1)}&to={local}",
        headers={"X-Tenant-Key": tenant.issued_keys.public_key},
    )
    days = {day["date"]: (day["is_open"], day["reason"]) for day in response.json["days"]}
    assert days == {
        (local - timedelta(days=1)).isoformat(): (False, "past"),
        local.isoformat(): (True, None),
    }
    with tenant_scope(tenant):
        assert booking.today(tenant) == local


def _serve(httpserver, path: str, body: bytes, etag: str | None = None):
    """Serve ``body``, answering 304 to a request that already has ``etag``; returns the log."""
    seen: list[dict[str, str | None]] = []

    def handler(request: Request) -> Response:
        seen.append({"If-None-Match": request.headers.get("If-None-Match")})
        if etag and request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        headers = {"ETag": etag} if etag else {}
        return Response(body, content_type="text/calendar", headers=headers)

    httpserver.expect_request(path).respond_with_handler(handler)
    return seen


def _calendar_tenant(url: str, zone: str) -> Tenant:
    tenant = make_tenant()
    tenant.time_zone = zone
    # Far enough ahead that the fixtures' March 2030 is bookable.
    tenant.booking_horizon_days = (date(2030, 12, 31) - date.today()).days
    tenant.ical_import_url = url
    db.session.commit()
    return tenant


def _closed(tenant: Tenant) -> set[date]:
    with tenant_scope(tenant):
        return {s.on_date for s in booking.day_statuses(tenant, *MARCH) if not s.is_open}


def test_the_sync_command_stores_busy_days_each_tenant_on_its_own(app, app_ctx, httpserver):
    google = _serve(httpserver, "/google.ics", GOOGLE, etag='"v1"')
    httpserver.expect_request("/gone.ics").respond_with_data("gone", status=404)
    los_angeles = _calendar_tenant(httpserver.url_for("/google.ics"), "America/Los_Angeles")
    broken = _calendar_tenant(httpserver.url_for("/gone.ics"), "UTC")
    berlin = _calendar_tenant(httpserver.url_for("/google.ics"), "Europe/Berlin")

    result = app.test_cli_runner().invoke(args=["mais", "sync-calendars"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert _closed(los_angeles) == march(2, 5, 7, 10, 12, 13, 20, 21, 22, 30)
    assert _closed(berlin) == march(3, 6, 8, 11, 13, 20, 21, 22, 31)
    assert broken.ical_import_error == "The calendar answered with HTTP status 404."
    assert los_angeles.ical_import_error is None and los_angeles.ical_synced_at is not None
    assert los_angeles.ical_etag == '"v1"'

    # The next sync asks whether the feed changed; unchanged, the busy days stay.
    result = app.test_cli_runner().invoke(args=["mais", "maintenance"])
    assert result.exit_code == 0, result.output
    assert "Synced 2 calendar(s); 1 could not be read." in result.output
    assert [r["If-None-Match"] for r in google] == [None, None, '"v1"', '"v1"']
    db.session.expire_all()
    assert _closed(los_angeles) == march(2, 5, 7, 10, 12, 13, 20, 21, 22, 30)


def test_a_failed_sync_keeps_the_last_good_days(app, app_ctx, httpserver):
    _serve(httpserver, "/cal.ics", OUTLOOK)
    tenant = _calendar_tenant(httpserver.url_for("/cal.ics"), "Europe/Berlin")
    app.test_cli_runner().invoke(args=["mais", "sync-calendars"])
    httpserver.clear()
    httpserver.expect_request("/cal.ics").respond_with_data("BEGIN:NOTHING", status=200)
    app.test_cli_runner().invoke(args=["mais", "sync-calendars"])
    db.session.expire_all()
    assert "does not serve an iCal calendar" in tenant.ical_import_error
    assert _closed(tenant) == march(4, 9, 14, 15, 18, 25, 27)


def test_busy_days_beyond_the_horizon_are_not_stored(app, app_ctx, httpserver):
    _serve(httpserver, "/cal.ics", GOOGLE)
    tenant = _calendar_tenant(httpserver.url_for("/cal.ics"), "America/Los_Angeles")
    # The horizon (and its margin) ends before the April fair.
    tenant.booking_horizon_days = (date(2030, 3, 31) - local_today(tenant)).days - (
        ical.HORIZON_MARGIN_DAYS
    )
    db.session.commit()
    with tenant_scope(tenant):
        assert ical.sync_calendar(tenant)
    assert "2030-03-30" in tenant.ical_busy_dates
    assert "2030-04-15" not in tenant.ical_busy_dates


def test_availability_never_fetches_the_calendar(client, app_ctx, httpserver):
    seen = _serve(httpserver, "/cal.ics", GOOGLE)
    tenant = _calendar_tenant(httpserver.url_for("/cal.ics"), "America/Los_Angeles")
    assert _closed(tenant) == set()  # not synced yet: nothing closes, nothing is fetched
    response = client.get(
        "/v1/availability?from=2030-03-01&to=2030-03-31",
        headers={"X-Tenant-Key": tenant.issued_keys.public_key},
    )
    assert response.status_code == 200
    assert seen == []
