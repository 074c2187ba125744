"""Settings: branding, embedding origins, return URL, keys, payouts onboarding, iCal import."""

from __future__ import annotations

import html
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from mais import ical, tenant_settings
from mais.errors import DomainError
from mais.extensions import db
from mais.keys import decrypt_secret
from mais.models import AuditLog, OnboardingState, Tenant
from mais.tenant_registry import find_tenant_by_secret_key

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
        tenant_settings.parse_origin(line, allow_local=True)
    assert error.value.field == "origins"


def test_origins_are_normalised_and_local_ones_need_development(app_ctx):
    assert tenant_settings.parse_origin("https://WWW.Example.com:8443/", allow_local=False) == (
        "https://www.example.com:8443"
    )
    assert (
        tenant_settings.parse_origin("http://localhost:5001", allow_local=True)
        == "http://localhost:5001"
    )
    with pytest.raises(DomainError, match="only in development"):
        tenant_settings.parse_origin("http://127.0.0.1:5001", allow_local=False)


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
END:VCALENDAR
"""


def test_ical_import_is_saved_at_once_and_synced_by_the_command(owner, tenant, app, httpserver):
    start = date.today() + timedelta(days=30)
    httpserver.expect_request("/cal.ics").respond_with_data(
        FEED
        % {
            b"first": start.strftime("%Y%m%d").encode(),
            b"after": (start + timedelta(days=2)).strftime("%Y%m%d").encode(),
        },
        content_type="text/calendar",
    )
    httpserver.expect_request("/broken.ics").respond_with_data("nope", status=500)
    db.session.commit()

    saved = owner.post(
        "/portal/settings/ical-import", data={"ical_import_url": httpserver.url_for("/cal.ics")}
    )
    assert saved.status_code == 302
    assert httpserver.log == []  # saving never waits on the owner's calendar server
    page = owner.get("/portal/settings").get_data(as_text=True)
    assert "will be synced within minutes" in page

    assert app.test_cli_runner().invoke(args=["mais", "sync-calendars"]).exit_code == 0
    db.session.expire_all()
    assert ical.busy_dates(tenant, start, start + timedelta(days=10)) == {
        start,
        start + timedelta(days=1),
    }
    page = owner.get("/portal/settings").get_data(as_text=True)
    assert "2 busy days imported; last synced" in page

    moved = owner.post(
        "/portal/settings/ical-import", data={"ical_import_url": httpserver.url_for("/broken.ics")}
    )
    assert moved.status_code == 302, moved.get_data(as_text=True)
    db.session.expire_all()
    assert tenant.ical_import_url.endswith("/broken.ics")
    # Another calendar's days no longer close dates.
    assert ical.busy_dates(tenant, start, start) == set()
    result = app.test_cli_runner().invoke(args=["mais", "sync-calendars"])
    assert "Synced 0 calendar(s); 1 could not be read." in result.output, result.output
    db.session.expire_all()
    assert tenant.ical_import_error == "The calendar answered with HTTP status 500."
    page = owner.get("/portal/settings").get_data(as_text=True)
    assert ": The calendar answered with HTTP status 500." in page

    bad = owner.post("/portal/settings/ical-import", data={"ical_import_url": "file:///etc/passwd"})
    assert bad.status_code == 400 and 'id="f-ical_import_url-error"' in bad.get_data(as_text=True)


def test_the_last_sync_and_its_error_show_in_the_tenants_zone(owner, tenant):
    tenant.time_zone = "Pacific/Auckland"
    tenant.ical_import_url = "https://calendar.example/cal.ics"
    tenant.ical_synced_at = datetime(2030, 1, 1, 5, 0, tzinfo=UTC)
    tenant.ical_sync_attempted_at = datetime(2030, 1, 1, 9, 30, tzinfo=UTC)
    tenant.ical_import_error = "The calendar did not answer in time."
    tenant.ical_busy_dates = ["2030-01-02"]
    db.session.commit()
    page = owner.get("/portal/settings").get_data(as_text=True)
    assert "last synced 2030-01-01 18:00 (Pacific/Auckland)" in page
    assert "could not be read at 2030-01-01 22:30: The calendar did not answer in time." in page


def test_the_time_zone_is_chosen_from_the_list_and_checked(owner, tenant):
    db.session.commit()
    page = owner.get("/portal/settings").get_data(as_text=True)
    assert '<option value="Europe/Berlin">' in page and '<option value="UTC" selected>' in page
    saved = owner.post("/portal/settings/time-zone", data={"time_zone": "Europe/Berlin"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert tenant.time_zone == "Europe/Berlin"
    for bad in ("Mars/Olympus_Mons", "", "../../etc/passwd", "europe/berlin"):
        refused = owner.post("/portal/settings/time-zone", data={"time_zone": bad})
        assert refused.status_code == 400
        assert "Choose a time zone from the list" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert tenant.time_zone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("reported", "stored"),
    [
        ("America/Los_Angeles", "America/Los_Angeles"),
        ("Asia/Calcutta", "Asia/Calcutta"),
        ("Not/A_Zone", "UTC"),
        (None, "UTC"),
    ],
)
def test_signup_takes_the_browsers_time_zone(client, app_ctx, reported, stored):
    page = client.get("/portal/signup").get_data(as_text=True)
    assert 'name="time_zone" value="UTC" data-browser-time-zone' in page
    assert "/static/portal/timezone." in page
    form = {
        "name": "Zone Studio",
        "slug": f"zone-{uuid.uuid4().hex[:8]}",
        "email": f"zone-{uuid.uuid4().hex[:8]}@example.com",
        "password": "long enough password",
    }
    if reported is not None:
        form["time_zone"] = reported
    assert client.post("/portal/signup", data=form).status_code == 200
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == form["slug"]))
    assert tenant.time_zone == stored
