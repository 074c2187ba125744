"""Settings: branding, embedding origins, return URL, keys, payouts onboarding, iCal import."""

from __future__ import annotations

import html
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from mais import ical, settings
from mais.errors import DomainError
from mais.extensions import db
from mais.keys import decrypt_secret
from mais.models import AuditLog, OnboardingState
from mais.tenants import find_tenant_by_secret_key

from .conftest import png_bytes


def test_branding_validates_colours_and_stores_a_logo(owner, tenant):
    db.session.commit()
    bad = owner.post(
        "/portal/settings/branding",
        data={"name": "Studio", "primary_color": "red", "accent_color": "#f59e0b"},
    )
    assert bad.status_code == 400
    assert 'id="f-primary_color-error"' in bad.get_data(as_text=True)
    good = owner.post(
        "/portal/settings/branding",
        data={
            "name": "Bright Studio",
            "primary_color": "#112233",
            "accent_color": "#AABBCC",
            "logo": (io.BytesIO(png_bytes()), "logo.png"),
        },
        content_type="multipart/form-data",
    )
    assert good.status_code == 302
    assert (tenant.name, tenant.brand_primary_color, tenant.brand_accent_color) == (
        "Bright Studio",
        "#112233",
        "#aabbcc",
    )
    assert owner.get(f"/portal/media/{tenant.logo_key}").content_type == "image/png"
    page = owner.get("/portal/settings").get_data(as_text=True)
    assert (
        f'src="/widget/{tenant.slug}/?key={tenant.public_key}&amp;origin=http%3A%2F%2Flocalhost"'
        in page
    )


@pytest.mark.parametrize(
    "line",
    [
        "https://example.com/path",
        "example.com",
        "https://*.example.com",
        "ftp://example.com",
        "http://example.com",
        "https://user:pw@example.com",
        "https://example.com?x=1",
        "https://example.com:99999",
    ],
)
def test_origins_must_be_exact_https_origins(line, app_ctx):
    with pytest.raises(DomainError) as error:
        settings.parse_origin(line, allow_local=True)
    assert error.value.field == "origins"


def test_origins_are_normalised_and_local_ones_need_development(app_ctx):
    assert settings.parse_origin("https://WWW.Example.com:8443/", allow_local=False) == (
        "https://www.example.com:8443"
    )
    assert (
        settings.parse_origin("http://localhost:5001", allow_local=True) == "http://localhost:5001"
    )
    with pytest.raises(DomainError, match="only in development"):
        settings.parse_origin("http://127.0.0.1:5001", allow_local=False)


def test_embedding_settings_and_the_return_url(owner, tenant):
    db.session.commit()
    saved = owner.post(
        "/portal/settings/embedding",
        data={
            "origins": "https://studio.example\nhttps://www.studio.example:8443\n\n",
            "return_url": "https://studio.example/thanks",
        },
    )
    assert saved.status_code == 302
    assert tenant.allowed_origins == ["https://studio.example", "https://www.studio.example:8443"]
    assert tenant.return_url == "https://studio.example/thanks"
    refused = owner.post(
        "/portal/settings/embedding",
        data={"origins": "https://studio.example", "return_url": "https://evil.example/x"},
    )
    assert refused.status_code == 400
    assert 'id="f-return_url-error"' in refused.get_data(as_text=True)
    page = html.unescape(owner.get("/portal/settings").get_data(as_text=True))
    snippet = (
        f'<script src="http://localhost/static/sdk/mais-sdk.js" data-tenant="{tenant.slug}" '
        f'data-key="{tenant.public_key}" async></script>'
    )
    assert snippet in page and 'data-copy-target="embed-snippet"' in page


def test_rotating_the_secret_key_shows_the_new_one_once(owner, tenant):
    old = tenant.issued_keys.secret_key
    response = owner.post("/portal/settings/secret-key")
    body = response.get_data(as_text=True)
    new = decrypt_secret(tenant.secret_key_ciphertext)
    assert new != old and new in body and response.headers["Cache-Control"] == "no-store"
    assert find_tenant_by_secret_key(old) is None
    assert find_tenant_by_secret_key(new) == tenant
    assert new not in owner.get("/portal/settings").get_data(as_text=True)
    assert "settings.rotate_secret_key" in set(db.session.scalars(select(AuditLog.action)))


def test_onboarding_button_starts_the_provider_flow(owner, app_ctx, login):
    from tests.factories import make_tenant

    fresh = make_tenant(onboarded=False)
    db.session.commit()
    client = login(fresh)
    assert "Set up payouts with Stripe" in client.get("/portal/settings").get_data(as_text=True)
    response = client.post("/portal/settings/onboarding")
    assert response.status_code == 302
    assert "/checkout/mock/onboarding" in response.headers["Location"]
    assert fresh.onboarding_state == OnboardingState.PENDING


FEED = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Test//EN
BEGIN:VEVENT
UID:1@test
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:%(first)s
DTEND;VALUE=DATE:%(after)s
SUMMARY:Other wedding
END:VEVENT
BEGIN:VEVENT
UID:2@test
DTSTAMP:20260101T000000Z
DTSTART:%(timed)sT150000Z
DTEND:%(timed)sT170000Z
SUMMARY:Timed
END:VEVENT
BEGIN:VEVENT
UID:3@test
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:%(free)s
TRANSP:TRANSPARENT
SUMMARY:Free
END:VEVENT
END:VCALENDAR
"""


def test_ical_import_closes_busy_days_and_reports_errors(owner, tenant, httpserver):
    start = date.today() + timedelta(days=30)

    def day(n: int) -> bytes:
        return (start + timedelta(days=n)).strftime("%Y%m%d").encode()

    httpserver.expect_request("/cal.ics").respond_with_data(
        FEED % {b"first": day(0), b"after": day(2), b"timed": day(5), b"free": day(7)},
        content_type="text/calendar",
    )
    httpserver.expect_request("/broken.ics").respond_with_data("nope", status=500)
    db.session.commit()

    owner.post(
        "/portal/settings/ical-import", data={"ical_import_url": httpserver.url_for("/cal.ics")}
    )
    assert tenant.ical_import_error is None
    busy = ical.busy_dates(tenant, start, start + timedelta(days=10))
    assert busy == {start, start + timedelta(days=1), start + timedelta(days=5)}

    owner.post(
        "/portal/settings/ical-import", data={"ical_import_url": httpserver.url_for("/broken.ics")}
    )
    assert "HTTP status 500" in tenant.ical_import_error
    page = owner.get("/portal/settings").get_data(as_text=True)
    assert "The calendar could not be read: The calendar answered with HTTP status 500." in page
    # the last good busy days are kept while the feed is broken
    assert start in ical.busy_dates(tenant, start, start)

    bad = owner.post("/portal/settings/ical-import", data={"ical_import_url": "file:///etc/passwd"})
    assert bad.status_code == 400 and 'id="f-ical_import_url-error"' in bad.get_data(as_text=True)


def test_a_feed_is_fetched_at_most_once_per_period_even_on_read_only_requests(tenant, httpserver):
    from werkzeug import Response

    fetched = []

    def handler(request):
        fetched.append(request.path)
        return Response(
            FEED
            % {
                b"first": b"20300101",
                b"after": b"20300102",
                b"timed": b"20300105",
                b"free": b"20300107",
            },
            content_type="text/calendar",
        )

    httpserver.expect_request("/cal.ics").respond_with_handler(handler)
    tenant.ical_import_url = httpserver.url_for("/cal.ics")
    db.session.commit()
    window = (date(2030, 1, 1), date(2030, 1, 31))
    assert ical.busy_dates(tenant, *window) == {date(2030, 1, 1), date(2030, 1, 5)}
    db.session.rollback()  # a widget page view commits nothing
    assert ical.busy_dates(tenant, *window) == {date(2030, 1, 1), date(2030, 1, 5)}
    assert fetched == ["/cal.ics"]
